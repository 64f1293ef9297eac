#pragma once

#include <occams_rpc/naming/file_source.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL boost::asio::awaitable<void> file_source::run(std::shared_ptr<detail::source_state> st, std::string path) {
  // The state seen last: (mtime in ns, size), or an error text. A change of either re-reads.
  struct seen {
    long long mtime = -1;
    long long size = -1;
    std::string error;
    bool operator==(const seen&) const = default;
  } last;
  bool first = true;
  do {
    seen now;
    struct ::stat sb {};
    if (::stat(path.c_str(), &sb) != 0) now.error = std::strerror(errno);
    else {
      now.mtime = static_cast<long long>(sb.st_mtim.tv_sec) * 1000000000LL + sb.st_mtim.tv_nsec;
      now.size = static_cast<long long>(sb.st_size);
      if (static_cast<std::size_t>(sb.st_size) > st->cfg.max_file_bytes)
        now.error = "larger than max_file_bytes (" + std::to_string(st->cfg.max_file_bytes) + ")";
    }
    if (first || !(now == last)) {
      first = false;
      last = now;
      std::string text;
      if (now.error.empty()) {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        if (!in) now.error = "cannot read";
        text = ss.str().substr(0, st->cfg.max_file_bytes);
      }
      if (!now.error.empty()) st->log.warn("naming {}: {}; keeping the last list", st->url, now.error);
      else {
        std::vector<std::string> problems;
        auto eps = parse_endpoint_lines(text, problems);
        for (auto& p : problems) st->log.warn("naming {}: {} (skipped)", st->url, p);
        st->deliver(std::move(eps));
      }
    }
  } while (co_await st->sleep(st->cfg.file_poll_period));
}

}  // namespace occams_rpc::naming
