// A server program run as a child process for a test: started with its "listening on ADDR"
// line read from its stdout, stopped with SIGTERM (only this child, by its PID).
#pragma once

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

struct server_process {
  pid_t pid = -1;
  std::string address;

  /// Runs argv (argv[0] is the program's path) and waits for its address line.
  explicit server_process(std::vector<std::string> argv) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    REQUIRE(rc == 0);
    std::FILE* f = ::fdopen(out[0], "r");
    char line[256] = {};
    bool got = f && std::fgets(line, sizeof line, f);
    if (f) std::fclose(f);  // the servers write nothing more to stdout
    REQUIRE(got);
    std::string_view l(line);
    REQUIRE(l.starts_with("listening on "));
    address = std::string(l.substr(13, l.find('\n') - 13));
  }
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /// SIGTERM (or `signal`), then waits; returns the wait status.
  int stop(int signal = SIGTERM) {
    if (pid < 0) return -1;
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  ~server_process() { stop(); }
};
