#!/usr/bin/env bash
# make-test-pki.sh OUTDIR: the test PKI for ringlb's TLS termination and re-encryption tests.
#
# bash + the openssl CLI only. Idempotent: does nothing if OUTDIR/.done exists. Everything
# is built in a staging directory beside OUTDIR and renamed to OUTDIR at the end, so an
# interrupted or concurrent run never leaves or uses a half-made OUTDIR. Certificates are valid for 3 days from
# now (backend-expired excepted). Keys are unencrypted PKCS#8 PEM, mode 0600.
#
# Naming: <name>.pem is the certificate alone, <name>.key its key, <name>.full.pem the
# certificate chain followed by the key in one file (HAProxy-style). Every CA signs its
# leaves directly (no intermediates), so the "chain" in .full.pem is the leaf alone; the
# CA certificate is the trust anchor and is never in a chain file.
# Every CA is ECDSA P-256 with SHA-256 signatures, including the one that signs RSA leaves.
#
# Files in OUTDIR:
#   public-ca.pem/.key          self-signed "ringlb test public CA" (what clients trust)
#   www-rsa.pem/.key/.full.pem  www.example.test, RSA-2048, SAN DNS:www.example.test
#   www-ecdsa.pem/.key/.full.pem      www.example.test, ECDSA P-256, same SAN
#   wildcard-apps.pem/.key/.full.pem  *.apps.example.test, ECDSA P-256, SAN DNS:*.apps.example.test
#   default.pem/.key/.full.pem  default.example.test, ECDSA P-256 (the default certificate)
#   bench-rsa.pem/.key/.full.pem      bench.example.test, RSA-2048 (benchmarks)
#   bench-ecdsa.pem/.key/.full.pem    bench.example.test, ECDSA P-256 (benchmarks)
#   public-certs/               one <name>.pem (chain + key) per public server certificate
#                               above (www-rsa, www-ecdsa, wildcard-apps, default), nothing
#                               else: a directory for certificate_dir
#   client-ca.pem/.key          self-signed "ringlb test client CA" (clients of the VIP)
#   client-alice.pem/.key/.full.pem   CN=client-alice, extendedKeyUsage clientAuth, valid
#   client-mallory.pem/.key/.full.pem CN=client-mallory, clientAuth, revoked (keyCompromise)
#   client-ca.crl               CRL of client-ca (PEM) revoking client-mallory
#   internal-ca.pem/.key        self-signed "ringlb test internal CA" (backends' issuer)
#   internal-ca.d/              internal-ca.pem plus its `openssl rehash` link (for ca_dir)
#   backend-1.pem/.key/.full.pem      backend-1.internal.test, ECDSA, SAN DNS:backend-1.internal.test, IP:127.0.0.1
#   backend-2.pem/.key/.full.pem      backend-2.internal.test, ECDSA, SAN DNS:backend-2.internal.test, IP:127.0.0.1
#   backend-expired.pem/.key/.full.pem  backend-expired.internal.test (+ IP:127.0.0.1), valid
#                               2020-01-01 .. 2020-01-02 only
#   backend-wrongname.pem/.key/.full.pem  SAN DNS:wrong.internal.test only (no IP SAN)
#   ringlb-client.pem/.key/.full.pem  CN=ringlb.internal.test, clientAuth: ringlb's certificate
#                               for mTLS to backends
#   untrusted-ca.pem/.key       self-signed "ringlb test untrusted CA" (trusted by nobody)
#   backend-untrusted.pem/.key/.full.pem  backend-1.internal.test (+ IP:127.0.0.1), signed by
#                               untrusted-ca
#   tickets-a.key               3 session ticket keys, one per line, base64 of 80 random bytes
#                               (HAProxy tls-ticket-keys format)
#   tickets-b.key               3 other keys
#   tickets-a-rotated.key       lines 2 and 3 of tickets-a.key, then one new key: a rotation
#                               by appending. (ringlb: the last key encrypts, all decrypt.
#                               HAProxy encrypts with the next-to-last.) Tickets issued under
#                               tickets-a.key stay decryptable under either reading.
#   ca-db/<ca>/, <ca>.cnf       `openssl ca` state and minimal config for client-ca and
#                               internal-ca (relative paths: run openssl ca from OUTDIR)
#   .done                       marks a complete PKI (the directory appears with it, renamed in)
#
# Test configs refer to these files as /etc/ringlb/pki/<file>; a test substitutes the real
# directory by replacing the string "/etc/ringlb/pki/" with "OUTDIR/".
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
[ -e "$out/.done" ] && exit 0
case $out in /*) ;; *) out=$PWD/$out ;; esac
out=${out%/}

OPENSSL=${OPENSSL:-openssl}
days=3
mkdir -p "$(dirname "$out")"
umask 077
stage=$(mktemp -d "$out.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cd "$stage"

ossl() {
  # openssl with its output kept quiet unless it fails.
  local log
  if ! log=$("$OPENSSL" "$@" 2>&1); then
    echo "make-test-pki: openssl $1 failed:" >&2
    echo "$log" >&2
    return 1
  fi
}

keyopts() {  # keyopts ec|rsa: openssl req -newkey arguments (one process: key + request)
  case $1 in
    ec) echo "-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
    rsa) echo "-newkey rsa:2048" ;;
  esac
}

make_ca() {  # make_ca NAME "Common Name": self-signed CA and an `openssl ca` database
  local name=$1 cn=$2
  # shellcheck disable=SC2046
  ossl req -x509 $(keyopts ec) -nodes -keyout "$name.key" -sha256 -days "$days" -subj "/O=ringlb tests/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$name.pem"
  mkdir -p "ca-db/$name/newcerts"
  : > "ca-db/$name/index.txt"
  echo 1000 > "ca-db/$name/serial"
  echo 1000 > "ca-db/$name/crlnumber"
  cat > "$name.cnf" <<EOF
# Minimal openssl ca config for $name; paths are relative to the PKI directory.
[ ca ]
default_ca = ca_default

[ ca_default ]
dir = ./ca-db/$name
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/newcerts
certificate = ./$name.pem
private_key = ./$name.key
default_md = sha256
default_days = $days
default_crl_days = $days
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none

[ policy_any ]
organizationName = optional
commonName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
}

# issue CA NAME KEYTYPE SUBJECT-CN EXTENSIONS [extra openssl ca args...]
issue() {
  local ca=$1 name=$2 type=$3 cn=$4 ext=$5
  shift 5
  # shellcheck disable=SC2046
  ossl req -new $(keyopts "$type") -nodes -keyout "$name.key" -subj "/CN=$cn" -out "$name.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid:always" "$ext" | tr ';' '\n' > "$name.ext"
  ossl ca -batch -config "$ca.cnf" -in "$name.csr" -out "$name.pem" -notext -extfile "$name.ext" "$@"
  cat "$name.pem" "$name.key" > "$name.full.pem"
  rm -f "$name.csr" "$name.ext"
}

server_ext() {  # server_ext ec|rsa SAN
  local ku="digitalSignature"
  [ "$1" = rsa ] && ku="digitalSignature,keyEncipherment"
  echo "keyUsage=critical,$ku;extendedKeyUsage=serverAuth;subjectAltName=$2"
}
client_ext="keyUsage=critical,digitalSignature;extendedKeyUsage=clientAuth"

# Public side: what clients of the VIP see.
make_ca public-ca "ringlb test public CA"
issue public-ca www-rsa rsa www.example.test "$(server_ext rsa DNS:www.example.test)"
issue public-ca www-ecdsa ec www.example.test "$(server_ext ec DNS:www.example.test)"
issue public-ca wildcard-apps ec "*.apps.example.test" "$(server_ext ec 'DNS:*.apps.example.test')"
issue public-ca default ec default.example.test "$(server_ext ec DNS:default.example.test)"
issue public-ca bench-rsa rsa bench.example.test "$(server_ext rsa DNS:bench.example.test)"
issue public-ca bench-ecdsa ec bench.example.test "$(server_ext ec DNS:bench.example.test)"
mkdir -p public-certs
for n in www-rsa www-ecdsa wildcard-apps default; do cp "$n.full.pem" "public-certs/$n.pem"; done

# Client certificates for the VIP's optional/required client verification.
make_ca client-ca "ringlb test client CA"
issue client-ca client-alice ec client-alice "$client_ext"
issue client-ca client-mallory ec client-mallory "$client_ext"
ossl ca -batch -config client-ca.cnf -revoke client-mallory.pem -crl_reason keyCompromise
ossl ca -batch -config client-ca.cnf -gencrl -crlexts crl_ext -out client-ca.crl

# Internal side: backends behind the re-encryption.
make_ca internal-ca "ringlb test internal CA"
for n in 1 2; do
  issue internal-ca "backend-$n" ec "backend-$n.internal.test" \
    "$(server_ext ec "DNS:backend-$n.internal.test,IP:127.0.0.1")"
done
issue internal-ca backend-expired ec backend-expired.internal.test \
  "$(server_ext ec DNS:backend-expired.internal.test,IP:127.0.0.1)" \
  -startdate 20200101000000Z -enddate 20200102000000Z
issue internal-ca backend-wrongname ec wrong.internal.test "$(server_ext ec DNS:wrong.internal.test)"
issue internal-ca ringlb-client ec ringlb.internal.test "$client_ext;subjectAltName=DNS:ringlb.internal.test"
mkdir -p internal-ca.d
cp internal-ca.pem internal-ca.d/
ossl rehash internal-ca.d

make_ca untrusted-ca "ringlb test untrusted CA"
issue untrusted-ca backend-untrusted ec backend-1.internal.test \
  "$(server_ext ec DNS:backend-1.internal.test,IP:127.0.0.1)"

# Session ticket keys: one base64 line per 80-byte key.
ticket_key() { "$OPENSSL" rand 80 | "$OPENSSL" base64 -A; echo; }
for f in tickets-a tickets-b; do
  { ticket_key; ticket_key; ticket_key; } > "$f.key"
done
{ tail -n 2 tickets-a.key; ticket_key; } > tickets-a-rotated.key

# Certificates are public; keys, ticket keys and CA state stay 0600/0700 (umask).
chmod 0644 ./*.pem ./*.crl public-certs/*.pem internal-ca.d/*
chmod 0600 ./*.key ./*.full.pem public-certs/*.pem
chmod 0755 public-certs internal-ca.d

# Publish: the staging directory, .done included, is renamed to OUTDIR in one step, so a
# concurrent run (two test processes sharing $RINGLB_TEST_PKI) never sees, or mixes, half a
# PKI. An empty OUTDIR is replaced; if another run got there first, its PKI is kept.
touch .done
chmod 0755 "$stage"
cd /
if [ -d "$out" ]; then rmdir "$out" 2>/dev/null || true; fi
if mv -T "$stage" "$out" 2>/dev/null; then
  exit 0
fi
[ -e "$out/.done" ] && exit 0
echo "make-test-pki: $out exists, is not empty and has no .done; remove it and run again" >&2
exit 1
