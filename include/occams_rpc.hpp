// Umbrella header: everything a user of occams-rpc needs.
#pragma once

#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>
#include <occams_rpc/core/logger.hpp>

#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>
#include <occams_rpc/proto/inflight_table.hpp>
#include <occams_rpc/proto/timeout_wheel.hpp>
#include <occams_rpc/proto/window_throttler.hpp>

#include <occams_rpc/codec/codec.hpp>
#include <occams_rpc/codec/msgpack_codec.hpp>
#include <occams_rpc/codec/raw_codec.hpp>

#include <occams_rpc/transport/address.hpp>
#include <occams_rpc/transport/socket_transport.hpp>

#include <occams_rpc/stream/call_response.hpp>
#include <occams_rpc/stream/client_pool.hpp>
#include <occams_rpc/stream/client_stream.hpp>
#include <occams_rpc/stream/failover_pool.hpp>
#include <occams_rpc/stream/server.hpp>
#include <occams_rpc/stream/server_request.hpp>

#include <occams_rpc/api/error_codec.hpp>
#include <occams_rpc/api/method.hpp>
#include <occams_rpc/api/reflection.hpp>
#include <occams_rpc/api/result.hpp>
#include <occams_rpc/api/router.hpp>
#include <occams_rpc/api/service.hpp>
#include <occams_rpc/api/stub.hpp>
#include <occams_rpc/api/type_name.hpp>

#include <occams_rpc/runtime/context_pool.hpp>

#include <occams_rpc/metrics/call_observer.hpp>
#include <occams_rpc/metrics/observer_pair.hpp>
#include <occams_rpc/metrics/registry.hpp>
