#!/usr/bin/env bash
# calculator_client against a server that accepts and never answers, and with wrong arguments
# (the ctest test "examples: calculator client reports timeouts from a silent server and
# refuses wrong flags").
#
#   silent_server_test.sh CLIENT_EXE
#
# With --timeout 300 every call must fail with the error it really got (a timeout), the many
# add calls must be skipped, and the client must exit 1 on its own (the ctest timeout is the
# only time bound: no timing is asserted). Wrong flags must exit 2 with a message that names
# the mistake. Stops only the silent server it started.
set -u

if [[ $# -ne 1 ]]; then
  echo "usage: $0 CLIENT_EXE" >&2
  exit 2
fi
client_exe=$1
failures=0

fail() {
  echo "silent_server_test: FAILED: $*" >&2
  failures=$((failures + 1))
}

# Runs the client with the given arguments; sets `out` (stdout and stderr) and `status`.
run_client() {
  out=$("$client_exe" "$@" 2>&1)
  status=$?
}

expect_usage_error() {
  local want=$1
  shift
  run_client "$@"
  [[ $status -eq 2 ]] || fail "'$*' exited $status, not 2"
  [[ $out == *"$want"* ]] || fail "'$*' did not say '$want': $out"
  [[ $out == *"usage: calculator_client"* ]] || fail "'$*' printed no usage"
}

# Wrong arguments.
expect_usage_error "unknown option '--bogus'" --connect unix:/nowhere --bogus 1
expect_usage_error "--timeout takes milliseconds" --connect unix:/nowhere --timeout abc
expect_usage_error "--timeout takes milliseconds" --connect unix:/nowhere --timeout 0
expect_usage_error "--calls needs a value" --connect unix:/nowhere --calls
expect_usage_error "--connect ADDR is required" --timeout 100
expect_usage_error "--connect 'nowhere'" --connect nowhere
run_client --help
[[ $status -eq 0 && $out == *"--timeout MS"* ]] || fail "--help: status $status: $out"

# The silent server: python3 listens on a Unix socket, accepts, reads nothing, answers nothing.
dir=$(mktemp -d "${TMPDIR:-/tmp}/occams-rpc-silent.XXXXXX") || exit 1
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  exec 3<&- 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfifo "$dir/server.out" || exit 1
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
print("listening", flush=True)
held = []
while True:
    held.append(s.accept()[0])
' "$dir/silent.sock" >"$dir/server.out" &
server_pid=$!
exec 3<"$dir/server.out"
if ! read -r -t 10 -u 3 line || [[ $line != listening ]]; then
  echo "silent_server_test: the silent server did not start" >&2
  exit 1
fi

run_client --connect "unix:$dir/silent.sock" --timeout 300
echo "$out"
[[ $status -eq 1 ]] || fail "against a silent server the client exited $status, not 1"
[[ $out == *"CalService.inc(41) failed: call timed out"* ]] || fail "inc did not report its timeout"
[[ $out == *"CalService.div(1, 0) failed: call timed out (rpc_timeout) (expected the method's error \"divide by zero\")"* ]] ||
  fail "div(1, 0) did not report the timeout it got"
[[ $out == *"skipping the 10000 add calls"* ]] || fail "the add calls were not skipped"

if [[ $failures -ne 0 ]]; then
  echo "silent_server_test: $failures check(s) failed" >&2
  exit 1
fi
echo "silent_server_test: all checks passed"
