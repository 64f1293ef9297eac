// runtime::context_pool: thread-per-core execution. N io_contexts, each run by one thread of
// its own with concurrency hint 1 (Asio's scheduler then never wakes another thread and keeps
// completions in a thread-private queue), optionally pinned to a CPU. Anything on one context runs on one thread, so an object living there (a
// connection, a server's share of its connections, a user's own state) needs no lock.
//
// Use it directly: make objects on its executors (executor(i) or next_executor()), then
// start(). A server or a pool given the pool spreads its connections over the contexts
// (docs/threads.md).
//
//   runtime::context_pool pool(2);              // 2 contexts, not running yet
//   server srv(pool.executors(), dispatch);     // the server spreads connections over them
//   srv.listen("127.0.0.1:7000");
//   pool.start();                               // 2 threads run them
//   ...
//   srv.async_shutdown(asio::use_future).get(); pool.finish(); pool.join();
//
// Thread safety: size(), context(), executor(), next_executor() and stop() may be called from
// any thread; start(), finish() and join() from one controlling thread (not a pool thread).
#pragma once

#include <occams_rpc/core/logger.hpp>
#include <occams_rpc/detail/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace occams_rpc::runtime {

namespace asio = boost::asio;

struct context_pool_options {
  /// Pin thread i to the i-th CPU the process may run on (sched_getaffinity), wrapping
  /// around when there are more threads than CPUs. Off by default: pinning pays only when the
  /// pool owns its CPUs (no other busy process or pool on them). Best effort: a thread that
  /// cannot be pinned (EPERM, EINVAL under a cpuset) runs unpinned and logs a warning.
  bool pin_threads = false;
  /// Threads are named "<name_prefix><i>" (seen in top -H, perf, gdb); at most 15 characters
  /// are kept, as Linux allows.
  const char* name_prefix = "occams-io-";
  /// Where failures of the pool's threads are logged (a handler that threw, pinning refused).
  logger log{};
};

class context_pool {
 public:
  /// `threads` contexts (0: std::thread::hardware_concurrency(), at least 1). The threads
  /// start with start(). Each context has a work guard, so its thread waits for work until
  /// finish() or stop().
  OCCAMS_RPC_DECL explicit context_pool(std::size_t threads = 0, context_pool_options options = {});
  /// stop(), then join(); then every context is shut down (context 0 first: the handlers it
  /// never ran are destroyed) before any is destroyed. An object that spans the contexts (a
  /// client_pool, a failover_pool, a server) may be owned by a handler left in one context's
  /// queue: destroying it may post to another context or release that context's I/O objects,
  /// which is safe while every context still exists (what it posts to a context already shut
  /// down is destroyed with that context).
  OCCAMS_RPC_DECL ~context_pool();
  context_pool(const context_pool&) = delete;
  context_pool& operator=(const context_pool&) = delete;

  std::size_t size() const noexcept { return contexts_.size(); }
  asio::io_context& context(std::size_t i) noexcept { return contexts_[i]->ctx; }
  /// Context i's executor.
  asio::any_io_executor executor(std::size_t i) const { return contexts_[i]->ctx.get_executor(); }
  /// Every context's executor, in order (to give a server or a pool).
  std::vector<asio::any_io_executor> executors() const {
    std::vector<asio::any_io_executor> out;
    out.reserve(contexts_.size());
    for (auto& s : contexts_) out.push_back(s->ctx.get_executor());
    return out;
  }
  /// The contexts' executors in turn (0, 1, ..., N-1, 0, ...): where to put the next
  /// connection. Lock-free; any thread.
  OCCAMS_RPC_DECL asio::any_io_executor next_executor() noexcept;

  /// Starts one thread per context (once; later calls do nothing). A handler that throws is
  /// logged and its thread carries on running its context. Throws std::system_error if a
  /// thread cannot be created (the threads already started are stopped and joined).
  OCCAMS_RPC_DECL void start();
  /// Lets each thread return once its context runs out of work (graceful: everything queued
  /// or pending still runs). Call join() to wait for them.
  OCCAMS_RPC_DECL void finish();
  /// Stops every context at once: threads return after the handler they are running; queued
  /// handlers stay queued (and are destroyed unrun with the pool). Any thread.
  OCCAMS_RPC_DECL void stop() noexcept;
  /// Waits for every thread to return. Not from a pool thread.
  OCCAMS_RPC_DECL void join();
  /// Whether thread i was pinned to a CPU (false before start() or when pinning failed).
  bool pinned(std::size_t i) const noexcept { return contexts_[i]->pinned.load(std::memory_order_acquire); }

 private:
  /// An io_context whose shutdown (Asio's first step of destruction, protected there) the
  /// pool can run for every context before it destroys any.
  struct shuttable_context : asio::io_context {
    using asio::io_context::io_context;
    void shut_down() { shutdown(); }
  };
  struct slot {
    shuttable_context ctx{1};  // concurrency hint 1: run by one thread
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{ctx.get_executor()};
    std::thread thread;
    std::atomic<bool> pinned{false};
  };

  OCCAMS_RPC_DECL void run_thread(std::size_t i);
  OCCAMS_RPC_DECL void pin(std::size_t i);

  context_pool_options options_;
  std::vector<std::unique_ptr<slot>> contexts_;
  std::atomic<std::size_t> next_{0};
  bool started_ = false;
};

}  // namespace occams_rpc::runtime

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/runtime/impl/context_pool.ipp>
#endif
