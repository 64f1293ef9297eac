// Build-mode switches shared by every header.
#pragma once

// Header-only by default. With OCCAMS_RPC_SEPARATE_COMPILATION, non-template bodies live in
// one translation unit that includes <occams_rpc/src.hpp> (as Boost.Asio and Boost.Redis do).
#ifdef OCCAMS_RPC_SEPARATE_COMPILATION
#define OCCAMS_RPC_DECL
#else
#define OCCAMS_RPC_HEADER_ONLY 1
#define OCCAMS_RPC_DECL inline
#endif
