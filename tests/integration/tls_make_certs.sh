#!/bin/sh
# Makes the TLS tests' certificates in DIR with Debian's `openssl` command (nothing secret or
# expiring is committed): a CA; a server certificate for localhost, 127.0.0.1 and ::1; a client
# certificate; an expired server certificate; a server certificate for another name; and a
# server certificate from a CA nobody trusts (rogue_ca). Each NAME gets NAME.pem and NAME.key.
#
#   tls_make_certs.sh DIR
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$1"
# P-256 keys: quick to make.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
ca() { key "$1"; openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1"; }
cert() {  # NAME CN EXTENSION DAYS SIGNER (DAYS -1: expired yesterday)
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$5.pem" -CAkey "$5.key" -CAcreateserial -out "$1.pem" -days "$4" \
    -extfile "$1.ext"
}
ca ca
ca rogue_ca
local_names='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'
cert server localhost "$local_names" 2 ca
cert client test-client 'extendedKeyUsage=clientAuth' 2 ca
cert expired localhost "$local_names" -1 ca
cert other_name other.example 'subjectAltName=DNS:other.example' 2 ca
cert rogue_server localhost "$local_names" 2 rogue_ca
