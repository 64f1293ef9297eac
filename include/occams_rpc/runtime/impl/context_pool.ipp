// context_pool's bodies (compiled once in the compiled mode).
#pragma once

#include <occams_rpc/runtime/context_pool.hpp>

#include <algorithm>
#include <exception>
#include <string>
#include <system_error>

#include <pthread.h>
#include <sched.h>

namespace occams_rpc::runtime {

OCCAMS_RPC_DECL context_pool::context_pool(std::size_t threads, context_pool_options options)
    : options_(std::move(options)) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  contexts_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<slot>());
}

OCCAMS_RPC_DECL context_pool::~context_pool() {
  stop();
  join();
  // Two passes: each context's unrun handlers are destroyed while every context still exists,
  // since what they own may reach the others (a pool's shards, a socket accepted for another
  // context). Context 0 first: a server's own objects live on its first executor and may hold
  // sockets made on the others (an accept in progress). Asio allows a second shutdown (it
  // finds nothing, or what was posted since), which ~io_context runs.
  for (auto& s : contexts_) s->ctx.shut_down();
  for (auto& s : contexts_) s.reset();
}

OCCAMS_RPC_DECL asio::any_io_executor context_pool::next_executor() noexcept {
  std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
  return contexts_[i]->ctx.get_executor();
}

OCCAMS_RPC_DECL void context_pool::start() {
  if (started_) return;
  started_ = true;
  try {
    for (std::size_t i = 0; i < contexts_.size(); ++i)
      contexts_[i]->thread = std::thread([this, i] { run_thread(i); });
  } catch (...) {  // std::system_error (EAGAIN): no half-started pool
    stop();
    join();
    throw;
  }
}

OCCAMS_RPC_DECL void context_pool::finish() {
  for (auto& s : contexts_) s->work.reset();
}

OCCAMS_RPC_DECL void context_pool::stop() noexcept {
  for (auto& s : contexts_) s->ctx.stop();
}

OCCAMS_RPC_DECL void context_pool::join() {
  for (auto& s : contexts_)
    if (s->thread.joinable()) s->thread.join();
}

OCCAMS_RPC_DECL void context_pool::run_thread(std::size_t i) {
  std::string name = std::string(options_.name_prefix ? options_.name_prefix : "") + std::to_string(i);
  name.resize(std::min<std::size_t>(name.size(), 15));
  pthread_setname_np(pthread_self(), name.c_str());
  if (options_.pin_threads) pin(i);
  auto& ctx = contexts_[i]->ctx;
  // A handler's exception unwinds run(); the context is not stopped, so running it again
  // carries on with the next handler. Returns once stopped or out of work.
  for (;;) {
    try {
      ctx.run();
      return;
    } catch (const std::exception& e) {
      options_.log.error("context_pool thread {}: a handler threw: {}", i, e.what());
    } catch (...) {
      options_.log.error("context_pool thread {}: a handler threw a non-standard exception", i);
    }
  }
}

OCCAMS_RPC_DECL void context_pool::pin(std::size_t i) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    options_.log.warn("context_pool thread {}: not pinned: sched_getaffinity failed", i);
    return;
  }
  // The (i mod count)-th allowed CPU.
  int count = CPU_COUNT(&allowed);
  if (count == 0) return;
  int want = static_cast<int>(i % static_cast<std::size_t>(count)), cpu = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed) && want-- == 0) {
      cpu = c;
      break;
    }
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof one, &one); err != 0) {
    options_.log.warn("context_pool thread {}: not pinned to CPU {}: {}", i, cpu,
                      std::generic_category().message(err));
    return;
  }
  contexts_[i]->pinned.store(true, std::memory_order_release);
}

}  // namespace occams_rpc::runtime
