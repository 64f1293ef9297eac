// occams_micro_bench: Google Benchmark micro-benchmarks of the sans-io pieces: header
// encode/decode, the frame reader over a buffer of many frames, and the msgpack codec on
// typical arguments.

#include <occams_rpc/codec/msgpack_codec.hpp>
#include <occams_rpc/core/buffer.hpp>
#include <occams_rpc/core/config.hpp>
#include <occams_rpc/proto/frame_reader.hpp>
#include <occams_rpc/proto/frame_writer.hpp>
#include <occams_rpc/proto/header.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

using namespace occams_rpc;

namespace {

// --- headers ----------------------------------------------------------------------------

template <class Header>
void header_encode(benchmark::State& state, Header h) {
  char out[proto::request_header_size];  // the larger header
  for (auto _ : state) {
    ++h.seq;
    proto::encode(h, out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK_CAPTURE(header_encode, request, proto::request_header{.action_word = 1, .seq = 42, .msg_len = 16, .blob_len = 64});
BENCHMARK_CAPTURE(header_encode, response, proto::response_header{.msg_len = 16, .seq = 42, .blob_len = 64});

template <class Header>
void header_decode(benchmark::State& state, Header h) {
  char in[proto::request_header_size];
  proto::encode(h, in);
  Header out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(in);
    auto ec = proto::decode(in, out);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK_CAPTURE(header_decode, request, proto::request_header{.action_word = 1, .seq = 42, .msg_len = 16, .blob_len = 64});
BENCHMARK_CAPTURE(header_decode, response, proto::response_header{.msg_len = 16, .seq = 42, .blob_len = 64});

// --- the frame reader -------------------------------------------------------------------

/// `count` request frames of action 1 with a `payload`-byte blob, back to back.
std::vector<char> many_requests(std::size_t count, std::size_t payload) {
  proto::frame_writer w;
  std::string blob(payload, 'x');
  for (std::size_t i = 0; i < count; ++i) w.add_request(i, 1u, {}, {blob.data(), blob.size()});
  std::vector<char> bytes;
  for (auto s : w.buffers()) bytes.insert(bytes.end(), s.begin(), s.end());
  return bytes;
}

/// Feeds a buffer of 1024 frames and cuts them all; items/s is frames per second.
void frame_reader_many(benchmark::State& state) {
  constexpr std::size_t frames = 1024;
  auto payload = static_cast<std::size_t>(state.range(0));
  auto bytes = many_requests(frames, payload);
  proto::request_reader reader(default_max_frame_size, bytes.size());
  proto::request_frame f;
  std::error_code ec;
  for (auto _ : state) {
    reader.feed({bytes.data(), bytes.size()});
    std::size_t n = 0;
    while (reader.next(f, ec) == proto::read_status::frame) ++n;
    if (n != frames) state.SkipWithError("frame count");
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(frame_reader_many)->Arg(0)->Arg(64)->Arg(4096);

// --- msgpack ----------------------------------------------------------------------------

struct file_attr {
  std::uint64_t inode = 0;
  std::uint32_t mode = 0;
  std::int64_t size = 0;
  std::string name;
  OCCAMS_RPC_FIELDS(inode, mode, size, name)
};

const msgpack_codec codec;
using i64_pair = std::tuple<std::int64_t, std::int64_t>;  // two arguments travel as one array

template <class T>
void msgpack_encode(benchmark::State& state, T value) {
  byte_buffer out(256);
  for (auto _ : state) {
    out.clear();
    auto ec = codec.encode(value, out);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out.data());
  }
}

template <class T>
void msgpack_decode(benchmark::State& state, T value) {
  byte_buffer in;
  (void)codec.encode(value, in);
  T out{};
  for (auto _ : state) {
    auto ec = codec.decode(in.span(), out);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out);
  }
}

/// Call arguments as a server decodes them: one array of exactly that many items.
template <class... T>
void msgpack_decode_args(benchmark::State& state, std::tuple<T...> value) {
  byte_buffer in;
  (void)std::apply([&](const auto&... v) { return codec.encode_args(in, v...); }, value);
  std::tuple<T...> out{};
  for (auto _ : state) {
    auto ec = codec.decode_args(in.span(), out);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out);
  }
}

BENCHMARK_CAPTURE(msgpack_encode, i64_pair, i64_pair{1, -1234567890123});
BENCHMARK_CAPTURE(msgpack_decode_args, i64_pair, i64_pair{1, -1234567890123});
BENCHMARK_CAPTURE(msgpack_decode, i64_pair, i64_pair{1, -1234567890123});
BENCHMARK_CAPTURE(msgpack_encode, string64, std::string(64, 'a'));
BENCHMARK_CAPTURE(msgpack_decode, string64, std::string(64, 'a'));
BENCHMARK_CAPTURE(msgpack_encode, struct, file_attr{.inode = 1234567, .mode = 0644, .size = 1 << 20, .name = "example.txt"});
BENCHMARK_CAPTURE(msgpack_decode, struct, file_attr{.inode = 1234567, .mode = 0644, .size = 1 << 20, .name = "example.txt"});

}  // namespace

BENCHMARK_MAIN();
