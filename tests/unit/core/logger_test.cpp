#include <occams_rpc/core/logger.hpp>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

using namespace occams_rpc;

namespace {

// A value whose fmt formatter counts how often it runs: proof that a disabled level formats
// nothing.
struct counted {
  static inline int formats = 0;
  int value = 0;
};

struct captured {
  std::vector<std::pair<log_level, std::string>> lines;
  logger::sink_type sink() {
    return [this](log_level l, std::string_view msg) { lines.emplace_back(l, std::string(msg)); };
  }
};

}  // namespace

template <>
struct fmt::formatter<counted> : fmt::formatter<int> {
  template <class FormatContext>
  auto format(const counted& c, FormatContext& ctx) const {
    ++counted::formats;
    return fmt::formatter<int>::format(c.value, ctx);
  }
};

TEST_CASE("a default logger logs nothing and formats nothing", "[core]") {
  counted::formats = 0;
  logger log;
  CHECK(log.level() == log_level::off);
  for (auto l : {log_level::trace, log_level::debug, log_level::info, log_level::warn, log_level::error,
                 log_level::off})
    CHECK_FALSE(log.enabled(l));
  log.error("boom {}", counted{1});
  log.log(log_level::error, "boom {}", counted{2});
  CHECK(counted::formats == 0);
}

TEST_CASE("a logger formats and sinks only messages at or above its level", "[core]") {
  counted::formats = 0;
  captured out;
  logger log(log_level::info, out.sink());
  CHECK(log.level() == log_level::info);
  CHECK_FALSE(log.enabled(log_level::trace));
  CHECK_FALSE(log.enabled(log_level::debug));
  CHECK(log.enabled(log_level::info));
  CHECK(log.enabled(log_level::error));

  log.debug("hidden {}", counted{1});
  log.log(log_level::trace, "hidden {}", counted{2});
  CHECK(counted::formats == 0);
  CHECK(out.lines.empty());

  log.info("seq {} took {} ms", counted{7}, 12);
  log.warn("warn {}", counted{8});
  log.error("error {}", counted{9});
  CHECK(counted::formats == 3);
  REQUIRE(out.lines.size() == 3);
  CHECK(out.lines[0] == std::pair{log_level::info, std::string("seq 7 took 12 ms")});
  CHECK(out.lines[1] == std::pair{log_level::warn, std::string("warn 8")});
  CHECK(out.lines[2] == std::pair{log_level::error, std::string("error 9")});
}

TEST_CASE("a logger at level off logs nothing even with a sink", "[core]") {
  counted::formats = 0;
  captured out;
  logger log(log_level::off, out.sink());
  log.error("x {}", counted{1});
  CHECK(counted::formats == 0);
  CHECK(out.lines.empty());
}

TEST_CASE("a logger without a sink is off whatever its level", "[core]") {
  counted::formats = 0;
  logger log(log_level::trace, nullptr);
  CHECK(log.level() == log_level::off);
  CHECK_FALSE(log.enabled(log_level::error));
  log.error("x {}", counted{1});  // must not call an empty std::function
  CHECK(counted::formats == 0);
}

TEST_CASE("a trace logger passes every level through", "[core]") {
  captured out;
  logger log(log_level::trace, out.sink());
  log.log(log_level::trace, "t");
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  REQUIRE(out.lines.size() == 5);
  CHECK(out.lines[0].first == log_level::trace);
  CHECK(out.lines[4] == std::pair{log_level::error, std::string("e")});
}

TEST_CASE("log levels have their lower-case names", "[core]") {
  CHECK(to_string(log_level::trace) == "trace");
  CHECK(to_string(log_level::debug) == "debug");
  CHECK(to_string(log_level::info) == "info");
  CHECK(to_string(log_level::warn) == "warn");
  CHECK(to_string(log_level::error) == "error");
  CHECK(to_string(log_level::off) == "off");
}

TEST_CASE("the stderr logger keeps the requested level", "[core]") {
  auto log = logger::to_stderr(log_level::warn);
  CHECK(log.level() == log_level::warn);
  CHECK_FALSE(log.enabled(log_level::info));
  CHECK(log.enabled(log_level::error));
}
