// The compiled mode of the naming layer (include/occams_rpc/naming/): its bodies, compiled
// once, in a library of their own so that only programs using naming link Boost.JSON.
// GCC 12 warns (-Wsubobject-linkage) about lambdas held in the frame of a coroutine defined in
// an included file; the coroutines are defined once, here, so there is nothing to link twice.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
#include <occams_rpc/naming/impl/endpoint_text.ipp>
#include <occams_rpc/naming/impl/etcd_json.ipp>
#include <occams_rpc/naming/impl/etcd_registration.ipp>
#include <occams_rpc/naming/impl/etcd_source.ipp>
#include <occams_rpc/naming/impl/etcd_view.ipp>
#include <occams_rpc/naming/impl/dns_source.ipp>
#include <occams_rpc/naming/impl/file_source.ipp>
#include <occams_rpc/naming/impl/url.ipp>
#include <occams_rpc/naming/detail/impl/etcd_http.ipp>
