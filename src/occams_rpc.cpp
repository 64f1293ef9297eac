// The compiled mode: Boost.Asio and the library's non-template code, compiled once.
#include <boost/asio/impl/src.hpp>
#include <occams_rpc/src.hpp>
