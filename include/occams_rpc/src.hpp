// Include this in exactly one translation unit of a program built with
// OCCAMS_RPC_SEPARATE_COMPILATION (the occams_rpc::compiled target does it for you).
#pragma once

#ifndef OCCAMS_RPC_SEPARATE_COMPILATION
#error "occams_rpc/src.hpp is for OCCAMS_RPC_SEPARATE_COMPILATION builds only"
#endif

#include <occams_rpc/core/impl/config.ipp>
#include <occams_rpc/core/impl/error.ipp>
#include <occams_rpc/transport/impl/address.ipp>
#include <occams_rpc/transport/impl/socket_transport.ipp>
#include <occams_rpc/session/impl/client_session.ipp>
#include <occams_rpc/session/impl/balancer.ipp>
#include <occams_rpc/session/impl/failover_fsm.ipp>
#include <occams_rpc/session/impl/pool_keeper_fsm.ipp>
#include <occams_rpc/session/impl/server_session.ipp>
#include <occams_rpc/runtime/impl/context_pool.ipp>
#include <occams_rpc/metrics/impl/registry.ipp>
#include <occams_rpc/metrics/impl/exporter.ipp>
