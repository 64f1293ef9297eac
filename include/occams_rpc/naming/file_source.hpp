// file_source (file:///path): one endpoint per line (endpoint_text.hpp), re-read when the
// file's size or modification time changes, checked every naming_config::file_poll_period.
// A missing or unreadable file, or one over max_file_bytes, is logged (once per change of
// state) and the last snapshot kept; bad lines are skipped with their number logged.
#pragma once

#include <occams_rpc/naming/detail/source_state.hpp>

namespace occams_rpc::naming {

class file_source final : public source {
 public:
  file_source(boost::asio::any_io_executor ex, std::string path, const naming_config& cfg = {}, logger log = {})
      : st_(std::make_shared<detail::source_state>(std::move(ex), cfg, std::move(log), "file://" + path)),
        path_(std::move(path)) {}
  ~file_source() override { stop(); }
  void start(snapshot_handler h) override {
    detail::source_state::start(st_, std::move(h),
                                [path = path_](std::shared_ptr<detail::source_state> st) { return run(std::move(st), path); });
  }
  void stop() override { detail::source_state::stop(st_); }
  const std::string& url() const noexcept override { return st_->url; }

 private:
  OCCAMS_RPC_DECL static boost::asio::awaitable<void> run(std::shared_ptr<detail::source_state> st, std::string path);
  std::shared_ptr<detail::source_state> st_;
  std::string path_;
};

}  // namespace occams_rpc::naming

#ifdef OCCAMS_RPC_HEADER_ONLY
#include <occams_rpc/naming/impl/file_source.ipp>
#endif
