#!/usr/bin/env bash
# make-certs.sh DIR [NAME...]: a local certificate authority and one certificate per
# cluster member, for the TLS with mutual authentication between members.
#
#   DIR/ca.pem, DIR/ca.key       the CA (made once; reused when it is already there,
#                                so a member added later gets a certificate of the same CA)
#   DIR/NAME.pem, DIR/NAME.key   NAME's certificate signed by that CA (RSA 2048,
#                                subjectAltName IP:127.0.0.1 and DNS:localhost, usable as
#                                TLS server and client), for each NAME (default: node1
#                                node2 node3); an existing pair is replaced.
# Only openssl is needed. Quiet on success; on failure it prints openssl's output.
# For tests and local trials: a production cluster uses certificates of its own CA,
# with the members' real names and addresses.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 DIR [NAME...]   (names default to node1 node2 node3)" >&2
  exit 2
fi
dir=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(node1 node2 node3)
command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
umask 077

# Runs a command, printing its output only when it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "make-certs.sh: failed: $*" >&2
    echo "$out" >&2
    exit 1
  fi
}

for name in "${names[@]}"; do
  case "$name" in
    ca | "" | */* | .*) echo "make-certs.sh: bad member name '$name'" >&2; exit 2 ;;
  esac
done

if [ -f "$dir/ca.pem" ] && [ -f "$dir/ca.key" ]; then
  # An existing CA must still be usable: its key must match its certificate.
  if [ "$(openssl x509 -in "$dir/ca.pem" -noout -pubkey 2>/dev/null)" != \
       "$(openssl pkey -in "$dir/ca.key" -pubout 2>/dev/null)" ]; then
    echo "make-certs.sh: $dir/ca.pem and $dir/ca.key do not belong together" >&2
    exit 1
  fi
elif [ -e "$dir/ca.pem" ] || [ -e "$dir/ca.key" ]; then
  echo "make-certs.sh: $dir holds only one of ca.pem and ca.key; remove it or add the other" >&2
  exit 1
else
  # A random suffix in the name, so that two test CAs never share a subject.
  quiet openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/O=Cairn/CN=Cairn cluster CA $(openssl rand -hex 4)" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ext.cnf" <<'CNF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
CNF

for name in "${names[@]}"; do
  quiet openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/O=Cairn/CN=$name" \
    -keyout "$tmp/$name.key" -out "$tmp/$name.csr"
  quiet openssl x509 -req -sha256 -days 825 -in "$tmp/$name.csr" \
    -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$tmp/ext.cnf" -out "$tmp/$name.pem"
  mv "$tmp/$name.key" "$dir/$name.key"
  chmod 644 "$tmp/$name.pem"
  mv "$tmp/$name.pem" "$dir/$name.pem"
done
chmod 644 "$dir/ca.pem"
