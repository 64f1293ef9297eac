// The server's bookkeeping for one of its executors: the connections living there and those
// still in their start step (a TLS handshake).
//
// Why per executor: a connection is touched only on its own executor (docs/threads.md), so its
// list is too, and needs no lock; listing and unlisting are O(1) (intrusive, auto-unlink), so
// closing many connections at once costs each the same. A stop (graceful or not) visits each
// shard on its executor: it ends the reads of the open connections, or closes them, and cancels
// the start steps under way.
#pragma once

#include <occams_rpc/stream/detail/server_connection.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace occams_rpc::detail {

/// A connection in its start step: its deadline, which a stop cancels. It unlinks itself when
/// destroyed (also when the context goes with the step suspended).
struct starting_connection
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
  asio::steady_timer deadline;
  starting_connection(const asio::any_io_executor& ex, std::chrono::milliseconds limit) : deadline(ex, limit) {}
};

/// The connections living on one executor: touched only there.
template <class Connection>
struct server_shard {
  using connection_list = boost::intrusive::list<Connection, boost::intrusive::base_hook<connection_hook>,
                                                 boost::intrusive::constant_time_size<false>>;
  using starting_list = boost::intrusive::list<starting_connection, boost::intrusive::constant_time_size<false>>;

  asio::any_io_executor ex;
  connection_list connections;  // the open ones; each unlinks itself when it closes
  starting_list starting;       // in their start step; each unlinks itself when it ends

  explicit server_shard(asio::any_io_executor e) : ex(std::move(e)) {}

  /// `f(connection&)` on every open connection (on ex).
  template <class F>
  void for_each_connection(F& f) {
    live_scratch_.clear();  // closing one edits the list: hold them first
    for (auto& c : connections)
      if (auto p = c.weak_from_this().lock()) live_scratch_.push_back(std::move(p));
    for (auto& c : live_scratch_) f(*c);
    live_scratch_.clear();
  }

  /// Ends every start step under way (on ex): their connections close.
  void cancel_starting() {
    for (auto& e : starting) e.deadline.cancel();
  }

 private:
  std::vector<std::shared_ptr<Connection>> live_scratch_;
};

}  // namespace occams_rpc::detail
