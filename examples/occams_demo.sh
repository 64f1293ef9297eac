#!/usr/bin/env bash
# The occams tool by hand (scripts/demo.sh): starts calculator_server on a Unix socket, lists
# its services, calls two methods (one fails with the method's own error: exit status 1),
# pings it, then stops the server (by its PID).
#
#   occams_demo.sh OCCAMS_EXE SERVER_EXE
set -u
[[ $# -eq 2 ]] || { echo "usage: $0 OCCAMS_EXE SERVER_EXE" >&2; exit 2; }
occams=$1
source "$(dirname "${BASH_SOURCE[0]}")/server_process.sh"
start_server addr "$2" --listen "unix:$server_dir/calc.sock" || exit 1
show() {
  echo "\$ occams $*"
  "$occams" "$@" 2>&1
  echo "(exit status $?)"
}
show list "$addr"
show call "$addr" CalService.add '[1,2]'
show call "$addr" CalService.div '[1,0]'
show ping "$addr" --count 3
