// observer_pair: one call_observer that tells two, so that metrics (metrics::registry) and
// your own observer (a tracer, a slow-call log) both see every call:
//
//   metrics::registry metrics;
//   slow_calls mine;
//   observer_pair both(metrics, mine);   // outlives the server and the streams, as they do
//   server_config scfg;  scfg.observer = &both;
//
// Each event goes to the first, then the second. Pairs nest for more than two.
#pragma once

#include <occams_rpc/metrics/call_observer.hpp>

namespace occams_rpc {

class observer_pair final : public call_observer {
 public:
  observer_pair(call_observer& first, call_observer& second) noexcept : first_(first), second_(second) {}
  void on_call_start(const call_info& c) noexcept override {
    first_.on_call_start(c);
    second_.on_call_start(c);
  }
  void on_call_end(const call_info& c) noexcept override {
    first_.on_call_end(c);
    second_.on_call_end(c);
  }
  void on_event(call_side s, observer_event e) noexcept override {
    first_.on_event(s, e);
    second_.on_event(s, e);
  }

 private:
  call_observer& first_;
  call_observer& second_;
};

}  // namespace occams_rpc
