#!/usr/bin/env bash
# Installs what the build needs on Debian 12 (as root), skipping what is already there.
# msgpack-cxx: Debian's libmsgpack-cxx-dev depends on libboost-dev (1.74), which conflicts
# with libboost1.81-dev, so its (header-only) package is unpacked into .deps/msgpack instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# etcd-server: the naming tests and examples start a real etcd (docs/discovery.md);
# prometheus: its promtool checks the metrics exposition in the tests.
packages=(cmake ninja-build g++ ccache libboost1.81-dev libboost-json1.81-dev libfmt-dev catch2 libbenchmark-dev python3 xxd iproute2 libssl-dev openssl etcd-server prometheus "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
have_msgpack() {
  compgen -G "/usr/lib/*/cmake/msgpack*" >/dev/null || compgen -G "/usr/local/lib/cmake/msgpack*" >/dev/null \
    || [ -d "$root/.deps/msgpack/usr/include/msgpack" ]
}
if ((${#missing[@]})) || ! have_msgpack; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! have_msgpack; then
    echo "install-deps: unpacking libmsgpack-cxx-dev into .deps/msgpack" >&2
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root libmsgpack-cxx-dev >/dev/null)
    mkdir -p "$root/.deps/msgpack"
    dpkg-deb -x "$tmp"/libmsgpack-cxx-dev_*.deb "$root/.deps/msgpack"
    rm -rf "$tmp"
  fi
fi
