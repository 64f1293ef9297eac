// The compiled mode of the TLS transport: Asio's ssl and tls_transport's bodies, compiled
// once, in a library of their own so that only programs using TLS link OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
#include <occams_rpc/transport/impl/tls_transport.ipp>
