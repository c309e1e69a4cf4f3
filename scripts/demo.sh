#!/usr/bin/env bash
# The ringlb demo: builds (installing apt dependencies if missing), generates a demo CA and
# certificates for two names, starts three real TLS backends (openssl s_server), starts
# ringlb as a TLS passthrough router in front of them, shows SNI routing with curl, and
# prints the commands to try it yourself. Ctrl-C stops everything it started.
#
#   DEMO_SECONDS=N   stop after N seconds (default: run until Ctrl-C when interactive,
#                    stop right after the checks when stdin is not a terminal)
#   DEMO_PORT=P      listen on port P (default 8443 if free, else a kernel-chosen port)
#   SKIP_BUILD=1     use the existing build/ (tests use this)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/bootstrap.sh
ringlb=${RINGLB_BIN:-$root/build/app/ringlb}
demo=$root/.demo
mkdir -p "$demo"
cd "$demo"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --- certificates (first run only) ---------------------------------------------------
names=(alpha.demo.test beta.demo.test)
if [ ! -f ca.pem ]; then
  echo "demo: generating a demo CA and certificates for ${names[*]}"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 365 -subj "/CN=ringlb demo CA" 2>/dev/null
  for n in "${names[@]}"; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$n.key" -out "$n.csr" \
      -subj "/CN=$n" 2>/dev/null
    printf 'subjectAltName=DNS:%s\n' "$n" > "$n.ext"
    openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$n.pem" -days 365 \
      -extfile "$n.ext" 2>/dev/null
  done
fi

# --- backends: two for alpha, one for beta; each serves /id naming itself ------------------
# The terminating listener presents a certificate from a separate "public" CA: the backends'
# CA (the internal one above) never reaches clients, and the public key never reaches a backend.
if [ ! -f public-ca.pem ]; then
  echo "demo: generating a demo public CA and a certificate for www.demo.test"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout public-ca.key -out public-ca.pem \
    -days 365 -subj "/CN=ringlb demo public CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout www.demo.test.key -out www.demo.test.csr \
    -subj "/CN=www.demo.test" 2>/dev/null
  printf 'subjectAltName=DNS:www.demo.test\n' > www.demo.test.ext
  openssl x509 -req -in www.demo.test.csr -CA public-ca.pem -CAkey public-ca.key -CAcreateserial \
    -out www.demo.test.pem -days 365 -extfile www.demo.test.ext 2>/dev/null
  cat www.demo.test.pem www.demo.test.key > www.demo.test.full.pem
  chmod 600 www.demo.test.full.pem
fi

start_backend() {  # name cert -> sets $backend_port (no subshell: its PID must reach cleanup)
  local name=$1 cert=$2
  mkdir -p "www-$name"
  printf 'served by %s\n' "$name" > "www-$name/id"
  (cd "www-$name" && exec openssl s_server -accept 0 -cert "$demo/$cert.pem" -key "$demo/$cert.key" -WWW \
    >"$demo/$name.log" 2>&1) &
  pids+=($!)
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$demo/$name.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "demo: backend $name did not start"; cat "$demo/$name.log"; exit 1; }
  backend_port=$port
}
start_backend alpha-1 alpha.demo.test; a1=$backend_port
start_backend alpha-2 alpha.demo.test; a2=$backend_port
start_backend beta-1 beta.demo.test; b1=$backend_port

port=${DEMO_PORT:-8443}
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then :; else port=0; fi

cat > ringlb-demo.toml <<TOML
# Written by scripts/demo.sh: a passthrough router for two names.
[global]
workers = 1   # one worker so round robin visibly alternates (each worker balances on its own)
log_level = "info"
runtime_socket = "$demo/admin.sock"   # HAProxy-style runtime API (socat)

[admin]
bind = "127.0.0.1:0"                  # /metrics (Prometheus) and / (status page)

[[listener]]
name = "demo"
bind = ["127.0.0.1:$port"]
default_pool = "alpha"
on_no_match = "alert"

[[listener.route]]
sni = "alpha.demo.test"
pool = "alpha"

[[listener.route]]
sni = "beta.demo.test"
pool = "beta"

# The public VIP: TLS terminated with the public certificate, re-encrypted to the alpha
# backends, whose certificates are verified against the internal CA.
[[listener]]
name = "public"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "alpha-tls"

[listener.tls]
certificates = ["$demo/www.demo.test.full.pem"]
alpn = ["http/1.1"]

[[pool]]
name = "alpha-tls"
[pool.tls]
ca_file = "$demo/ca.pem"
verify_name = "alpha.demo.test"
[[pool.backend]]
name = "alpha-1"
address = "127.0.0.1:$a1"
[[pool.backend]]
name = "alpha-2"
address = "127.0.0.1:$a2"

[[pool]]
name = "alpha"
algorithm = "round_robin"
[pool.health]                 # the data path is passthrough; the check speaks TLS
type = "tls"
interval = "1s"
[pool.health.tls]
ca_file = "$demo/ca.pem"
sni = "alpha.demo.test"
[[pool.backend]]
name = "alpha-1"
address = "127.0.0.1:$a1"
[[pool.backend]]
name = "alpha-2"
address = "127.0.0.1:$a2"

[[pool]]
name = "beta"
[[pool.backend]]
name = "beta-1"
address = "127.0.0.1:$b1"
TOML

rm -f ready
"$ringlb" run -c ringlb-demo.toml --ready-file ready > ringlb.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f ready ] && break; sleep 0.05; done
[ -f ready ] || { echo "demo: ringlb did not start:"; cat ringlb.log; exit 1; }
port=$(awk '$2 == "demo" {print $3}' ready); port=${port##*:}
tls_port=$(awk '$2 == "public" {print $3}' ready); tls_port=${tls_port##*:}
admin=$(awk '$2 == "@admin" {print $3}' ready)
api() { echo "$1" | socat stdio "UNIX-CONNECT:$demo/admin.sock"; }

get() { curl -sS --cacert "$demo/ca.pem" --resolve "$1:$port:127.0.0.1" "https://$1:$port/id" 2>&1 || true; }
echo
echo "ringlb is routing TLS by SNI on 127.0.0.1:$port without holding any backend key:"
for i in 1 2 3 4; do printf '  alpha.demo.test -> %s\n' "$(get alpha.demo.test)"; done
for i in 1 2; do printf '  beta.demo.test  -> %s\n' "$(get beta.demo.test)"; done
printf '  other.demo.test -> %s\n' "$(get other.demo.test | head -1)"
echo
echo "and terminating TLS on 127.0.0.1:$tls_port (public CA), re-encrypting to the alpha backends (internal CA):"
for i in 1 2; do
  printf '  www.demo.test   -> %s\n' "$(curl -sS --cacert "$demo/public-ca.pem" \
    --resolve "www.demo.test:$tls_port:127.0.0.1" "https://www.demo.test:$tls_port/id" 2>&1 || true)"
done
echo
echo "Operations: health checks, then drain alpha-2 through the runtime API (as with HAProxy):"
for _ in $(seq 50); do api "show stat" | grep -q '^alpha,alpha-2,.*,UP,' && break; sleep 0.1; done
api "show stat" | awk -F, '$1 == "alpha" && $2 != "BACKEND" {printf "  show stat: %s/%s %s\n", $1, $2, $18}'
api "set server alpha/alpha-2 state drain" >/dev/null
for i in 1 2 3; do printf '  alpha.demo.test -> %s   (alpha-2 draining)\n' "$(get alpha.demo.test)"; done
api "set server alpha/alpha-2 state ready" >/dev/null
printf '  metrics: %s\n' "$(curl -s "http://$admin/metrics" | grep -c '^ringlb_') samples at http://$admin/metrics"
echo
echo "Try it yourself:"
echo "  curl --cacert $demo/ca.pem --resolve alpha.demo.test:$port:127.0.0.1 https://alpha.demo.test:$port/id"
echo "  curl --cacert $demo/ca.pem --resolve beta.demo.test:$port:127.0.0.1 https://beta.demo.test:$port/id"
echo "  openssl s_client -connect 127.0.0.1:$port -servername beta.demo.test -CAfile $demo/ca.pem </dev/null"
echo "  openssl s_client -connect 127.0.0.1:$port -servername nobody.demo.test </dev/null   # unrecognized_name alert"
echo "  curl --cacert $demo/public-ca.pem --resolve www.demo.test:$tls_port:127.0.0.1 https://www.demo.test:$tls_port/id"
echo "  echo 'show stat' | socat stdio UNIX-CONNECT:$demo/admin.sock"
echo "  echo 'set server alpha/alpha-1 state maint' | socat stdio UNIX-CONNECT:$demo/admin.sock"
echo "  curl http://$admin/metrics ; curl http://$admin/"
echo "  kill -HUP \$(pgrep -f ringlb-demo.toml)    # reload $demo/ringlb-demo.toml without dropping a connection"
echo "  $ringlb check -c $demo/ringlb-demo.toml"
echo "ringlb's log (one access line per connection): $demo/ringlb.log"

if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
elif [ -t 0 ]; then
  echo "Press Ctrl-C to stop the demo."
  while true; do sleep 3600; done
fi
echo
echo "demo: last access log lines:"
grep ' access ' ringlb.log | tail -3 || true
