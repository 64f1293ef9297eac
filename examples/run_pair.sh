#!/usr/bin/env bash
# Runs an example client against an example server over a Unix-domain socket (the ctest
# tests "examples: ..."): 02_echo_client with 01_echo_server, calculator_client with
# calculator_server. The server must print "listening on ADDR" first; the client takes
# --connect ADDR.
#
#   run_pair.sh SERVER_EXE CLIENT_EXE [CLIENT_ARGS...]
#
# Starts the server on a socket in a fresh temporary directory, reads its "listening on ADDR"
# line, runs the client against ADDR (with --calls 2000 unless other client arguments are
# given), stops the server with SIGTERM (only the process this script started) and waits for
# it. Exits with the client's status.
set -u

if [[ $# -lt 2 ]]; then
  echo "usage: $0 SERVER_EXE CLIENT_EXE [CLIENT_ARGS...]" >&2
  exit 2
fi
server_exe=$1
client_exe=$2
shift 2
client_args=("$@")
[[ ${#client_args[@]} -eq 0 ]] && client_args=(--calls 2000)

dir=$(mktemp -d "${TMPDIR:-/tmp}/occams-rpc-pair.XXXXXX") || exit 1
server_pid=

stop_server() {
  [[ -n $server_pid ]] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    # A graceful shutdown takes milliseconds here; do not hang the test if it does not come.
    for _ in $(seq 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run_pair: the server ignored SIGTERM; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null
    fi
  fi
  wait "$server_pid"
  local status=$?
  server_pid=
  [[ $status -eq 0 ]] || echo "run_pair: the server exited with status $status" >&2
  return 0
}
cleanup() {
  stop_server
  exec 3<&- 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server's stdout goes through a FIFO that stays open (fd 3) until the end, so the
# server never writes into a closed pipe.
mkfifo "$dir/server.out" || exit 1
"$server_exe" --listen "unix:$dir/server.sock" >"$dir/server.out" &
server_pid=$!
exec 3<"$dir/server.out"

line=
if ! read -r -t 10 -u 3 line; then
  echo "run_pair: no address line from the server" >&2
  exit 1
fi
if [[ $line != "listening on "* ]]; then
  echo "run_pair: unexpected first line from the server: '$line'" >&2
  exit 1
fi
address=${line#listening on }
echo "run_pair: server (pid $server_pid) $line"

"$client_exe" --connect "$address" "${client_args[@]}"
client_status=$?
echo "run_pair: client exited with status $client_status"

stop_server
exit "$client_status"
