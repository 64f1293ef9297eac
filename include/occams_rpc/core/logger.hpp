// A small logger passed in by the user: a level and a sink. The library never prints on its
// own; messages are formatted (with fmt) only after the level check.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string_view>
#include <utility>

namespace occams_rpc {

enum class log_level { trace, debug, info, warn, error, off };

constexpr std::string_view to_string(log_level l) noexcept {
  constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error", "off"};
  return names[static_cast<int>(l)];
}

class logger {
 public:
  using sink_type = std::function<void(log_level, std::string_view)>;

  /// Logs nothing.
  logger() = default;
  logger(log_level level, sink_type sink) : level_(sink ? level : log_level::off), sink_(std::move(sink)) {}

  /// A logger that writes "[level] message" lines to stderr.
  static logger to_stderr(log_level level = log_level::info) {
    return {level, [](log_level l, std::string_view msg) {
              fmt::print(stderr, "[occams_rpc {}] {}\n", to_string(l), msg);
            }};
  }

  bool enabled(log_level l) const noexcept { return l >= level_ && level_ != log_level::off; }
  log_level level() const noexcept { return level_; }

  template <class... Args>
  void log(log_level l, fmt::format_string<Args...> f, Args&&... args) const {
    if (!enabled(l)) return;
    sink_(l, fmt::vformat(f, fmt::make_format_args(args...)));
  }
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) const { log(log_level::debug, f, std::forward<Args>(a)...); }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) const { log(log_level::info, f, std::forward<Args>(a)...); }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) const { log(log_level::warn, f, std::forward<Args>(a)...); }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) const { log(log_level::error, f, std::forward<Args>(a)...); }

 private:
  log_level level_ = log_level::off;
  sink_type sink_;
};

}  // namespace occams_rpc
