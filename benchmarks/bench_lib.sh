# shellcheck shell=bash disable=SC2034,SC2154  # sourced: prog comes from, and pin_* go to, the caller
# Shell helpers shared by run.sh and instructions.sh (sourced, not run). The caller sets
# `prog` (its name, for messages) before using them.

# --bin-dir [LABEL=]DIR, collected into the arrays bin_labels and bin_dirs.
bin_labels=()
bin_dirs=()
add_bin_dir() {
  if [[ $1 == *=* ]]; then bin_labels+=("${1%%=*}"); bin_dirs+=("${1#*=}"); else bin_labels+=(""); bin_dirs+=("$1"); fi
}

# Gives every bin dir without a label one (A, B, ...), makes its path absolute and checks that
# it holds the executables named as arguments; exits 2 otherwise.
check_bin_dirs() {
  local letters=(A B C D E F G H) i exe d
  for i in "${!bin_dirs[@]}"; do
    [[ -n ${bin_labels[$i]} ]] || bin_labels[i]=${letters[$i]:-B$i}
    d=$(cd "${bin_dirs[$i]}" 2>/dev/null && pwd) || { echo "$prog: no directory '${bin_dirs[$i]}'" >&2; exit 2; }
    bin_dirs[i]=$d
    for exe in "$@"; do
      [[ -x ${bin_dirs[$i]}/$exe ]] || { echo "$prog: no $exe in ${bin_dirs[$i]}" >&2; exit 2; }
    done
  done
}

# The server this script started: stop_server GRACE sends it SIGTERM, waits up to GRACE
# seconds, then SIGKILLs it, and reaps it. Only this PID is ever signalled.
server_pid=
stop_server() {
  [[ -n $server_pid ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  # tail --pid ends when the server does.
  timeout "${1:-5}" tail --pid="$server_pid" -f /dev/null ||
    { echo "$prog: server $server_pid ignored SIGTERM; killing it" >&2; kill -KILL "$server_pid" 2>/dev/null; }
  wait "$server_pid" 2>/dev/null
  server_pid=
}

# pin_server / pin_client: taskset prefixes for CPU 0 and CPU 1 (empty on one CPU).
pin_server=()
pin_client=()
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
  pin_server=(taskset -c 0)
  pin_client=(taskset -c 1)
else
  echo "$prog: fewer than 2 CPUs (or no taskset): not pinning" >&2
fi
