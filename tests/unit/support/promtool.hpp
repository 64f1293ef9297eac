// Runs Prometheus's `promtool check metrics` on an exposition text. The tool is required
// (Debian package `prometheus`, in scripts/install-deps.sh): without it the check fails.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace occams_rpc::test {

struct promtool_result {
  int status = -1;     // promtool's exit status; 0: valid, no lint problem
  std::string output;  // what it said
};

inline promtool_result promtool_check(const std::string& exposition) {
  promtool_result r;
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    r.output = "promtool not found: install Debian's prometheus package (scripts/install-deps.sh)";
    return r;
  }
  char path[] = "/tmp/occams-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) {
    r.output = "mkstemp failed";
    return r;
  }
  ::close(fd);
  std::ofstream(path, std::ios::binary) << exposition;
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  ::unlink(path);
  return r;
}

}  // namespace occams_rpc::test
