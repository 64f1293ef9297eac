# Sourced by example and test scripts (bash): starts server programs that print
# "listening on ADDR" first, and stops them (only those, by their PIDs) when the script exits.
#
#   source examples/server_process.sh
#   start_server addr calculator_server --listen 127.0.0.1:0 || exit 1   # $addr: its address
#   kill -STOP "${server_pids[-1]}"                                       # (resumed at exit)
server_pids=()
server_dir=$(mktemp -d "${TMPDIR:-/tmp}/occams-servers.XXXXXX") || exit 1
stop_servers() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$server_dir"
}
trap stop_servers EXIT

# start_server VAR EXE ARGS...: runs EXE ARGS in the background; sets VAR to the address it prints.
start_server() {
  local var=$1 fifo="$server_dir/out${#server_pids[@]}" line fd
  shift
  mkfifo "$fifo" || return 1
  "$@" >"$fifo" 2>>"$server_dir/err" &
  server_pids+=($!)
  exec {fd}<"$fifo"  # kept open: the server may write more
  if ! read -r -t 10 -u "$fd" line || [[ $line != "listening on "* ]]; then
    echo "no address line from $1:" >&2
    cat "$server_dir/err" >&2
    return 1
  fi
  printf -v "$var" '%s' "${line#listening on }"
  server_fd=$fd  # the rest of its stdout (e.g. calculator_server's "metrics on ADDR")
}
