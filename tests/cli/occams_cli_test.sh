#!/usr/bin/env bash
# occams against calculator_server on loopback (the ctest test "examples: occams calls, pings
# and lists calculator_server"): answers on stdout with status 0, the method's error and
# framework errors on stderr with status 1, usage and JSON mistakes with status 2.
#
#   occams_cli_test.sh OCCAMS_EXE SERVER_EXE
set -u
[[ $# -eq 2 ]] || { echo "usage: $0 OCCAMS_EXE SERVER_EXE" >&2; exit 2; }
occams=$1 server_exe=$2
source "$(dirname "${BASH_SOURCE[0]}")/../../examples/server_process.sh"
dir=$server_dir
start_server address "$server_exe" --listen 127.0.0.1:0 || exit 1
echo "server: $address"

failed=0
# DESCRIPTION WANTED_STATUS WANTED_STDOUT (exact, "*" for any) TEXT_IN_STDERR ("" for none) ARGS...
expect() {
  local what=$1 want=$2 out=$3 err=$4
  shift 4
  "$occams" "$@" >"$dir/out" 2>"$dir/err"
  local status=$?
  local ok=1
  [[ $status -eq $want ]] || ok=0
  [[ $out == "*" || "$(cat "$dir/out")" == "$out" ]] || ok=0
  if [[ -n $err ]]; then grep -qF -- "$err" "$dir/err" || ok=0; else [[ ! -s $dir/err ]] || ok=0; fi
  if [[ $ok -eq 1 ]]; then
    echo "ok: $what"
  else
    echo "FAILED: $what: status $status (wanted $want); stdout:" >&2
    cat "$dir/out" >&2
    echo "stderr:" >&2
    cat "$dir/err" >&2
    failed=1
  fi
}
dead=127.0.0.1:1  # nothing listens on port 1 on loopback

expect "call CalService.add prints the sum" 0 "3" "" call "$address" CalService.add '[1,2]'
expect "call with one argument and a timeout" 0 "42" "" call "$address" CalService.inc 41 --timeout 5
expect "call EchoService.repeat prints a JSON string" 0 '"hello"' "" call "$address" EchoService.repeat '"hello"'
expect "the method's string error exits 1" 1 "" 'CalService.div failed: error "divide by zero"' \
  call "$address" CalService.div '[1,0]'
expect "the method's error code exits 1" 1 "" "EchoService.io_error failed: error code 5" \
  call "$address" EchoService.io_error '"x"'
expect "an unknown method is rpc_method_notfound" 1 "" "rpc_method_notfound" call "$address" CalService.mul '[1,2]'
expect "an unknown service is rpc_service_notfound" 1 "" "rpc_service_notfound" call "$address" NoService.add '[1,2]'
expect "arguments of the wrong types are rpc_decode" 1 "" "rpc_decode" call "$address" CalService.add '["a","b"]'
expect "no server exits 1 saying it cannot connect" 1 "" "cannot connect to $dead" \
  call "$dead" CalService.add '[1,2]' --timeout 2
expect "bad JSON exits 2 saying where" 2 "" "bad JSON at byte" call "$address" CalService.add '[1,2'
expect "an unknown form exits 2" 2 "" 'unknown form {"$bim"' call "$address" EchoService.repeat '{"$bim":"AA=="}'
expect "an unknown flag exits 2" 2 "" "unknown option '--frobnicate'" call "$address" CalService.add '[1,2]' --frobnicate 1
expect "a bad timeout exits 2" 2 "" "--timeout takes seconds" call "$address" CalService.add '[1,2]' --timeout -1
expect "a missing argument exits 2" 2 "" "call takes ADDR SERVICE.METHOD JSON" call "$address" CalService.add
expect "an action without a method exits 2" 2 "" "is not SERVICE.METHOD" call "$address" CalService '[1,2]'
expect "an unknown command exits 2" 2 "" "unknown command 'frob'" frob "$address"
expect "TLS flags without --tls-ca exit 2" 2 "" "need --tls-ca" call "$address" CalService.add '[1,2]' --tls-cert x
expect "ping prints each round trip and a summary" 0 "*" "" ping "$address" --count 3
grep -q "^3 pings, 0 lost: min" "$dir/out" || { echo "FAILED: ping summary:" >&2; cat "$dir/out" >&2; failed=1; }
[[ $(grep -c "^pong from" "$dir/out") -eq 3 ]] || { echo "FAILED: ping lines" >&2; failed=1; }
expect "list prints the reflection listing" 0 "CalService
  inc: i64(i64)
  add: i64(i64, i64)
  div: i64(i64, i64), error: string
EchoService
  repeat: string(string)
  io_error: void(string), error: std::errc
rpc_reflection
  list: [occams_rpc::api::service_info]()" "" list "$address"
expect "--help exits 0 with the usage" 0 "*" "" --help

# A server that accepts (the kernel completes the connect) but never answers: a second
# calculator_server, stopped with SIGSTOP (resumed, then stopped by its PID, at exit).
start_server stopped "$server_exe" --listen 127.0.0.1:0 || exit 1
kill -STOP "${server_pids[-1]}"
expect "a call without an answer exits 1 naming the timeout" 1 "" "CalService.add failed: call timed out (rpc_timeout)" \
  call "$stopped" CalService.add '[1,2]' --timeout 0.3
exit "$failed"
