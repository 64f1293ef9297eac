#!/usr/bin/env bash
# calculator_server and calculator_client over mutual TLS (the ctest test "examples: ...
# over mutual TLS"): certificates made now by tls_make_certs.sh in a temporary directory.
# The client with its certificate gets every answer right; without one, or expecting another
# server name, it fails (status 1) and says why.
#
#   calculator_tls_test.sh SERVER_EXE CLIENT_EXE MAKE_CERTS_SH
set -u
[[ $# -eq 3 ]] || { echo "usage: $0 SERVER_EXE CLIENT_EXE MAKE_CERTS_SH" >&2; exit 2; }
server_exe=$1 client_exe=$2 make_certs=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/occams-rpc-tls-example.XXXXXX") || exit 1
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid"
  fi
  exec 3<&- 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
sh "$make_certs" "$dir" >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; exit 1; }

mkfifo "$dir/server.out" || exit 1
"$server_exe" --listen 127.0.0.1:0 --tls-cert "$dir/server.pem" --tls-key "$dir/server.key" \
  --tls-client-ca "$dir/ca.pem" >"$dir/server.out" 2>"$dir/server.err" &
server_pid=$!
exec 3<"$dir/server.out"
line=
read -r -t 10 -u 3 line || { echo "no address line from the server" >&2; cat "$dir/server.err" >&2; exit 1; }
address=${line#listening on }
echo "server: $line"

failed=0
expect() {  # DESCRIPTION WANTED_STATUS TEXT_IN_OUTPUT CLIENT_ARGS...
  local what=$1 want=$2 text=$3
  shift 3
  "$client_exe" --connect "$address" --calls 200 --timeout 5000 --tls-ca "$dir/ca.pem" "$@" >"$dir/client.out" 2>&1
  local status=$?
  if [[ $status -ne $want ]] || ! grep -q -- "$text" "$dir/client.out"; then
    echo "FAILED: $what: status $status (wanted $want), output:" >&2
    cat "$dir/client.out" >&2
    failed=1
  else
    echo "ok: $what"
  fi
}
expect "a client with its certificate gets every answer" 0 "200 right" \
  --tls-cert "$dir/client.pem" --tls-key "$dir/client.key"
expect "a client without a certificate is refused" 1 "requires a client certificate"
expect "a client expecting another server name is refused" 1 "does not match the server name" \
  --tls-cert "$dir/client.pem" --tls-key "$dir/client.key" --tls-server-name other.example
exit "$failed"
