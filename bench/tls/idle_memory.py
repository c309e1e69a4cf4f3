#!/usr/bin/env python3
"""Memory held by idle terminated connections: ringlb's RSS with N idle TLS connections
(handshake done on the front, re-encrypted connection to an nginx backend established, no
data in flight), minus its RSS before, divided by N.

  python3 bench/tls/idle_memory.py [--connections 2000] [--bin build/app/ringlb]

Uses the integration-test harness (test PKI, NginxTls) and Python's ssl module as client.
Reports per-connection bytes for RSS and for the heap (glibc mallinfo is not reachable from
outside, so RSS is what is measured; anonymous memory from /proc/PID/smaps_rollup too)."""
import argparse
import os
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../tests/integration"))


def rss_kib(pid, field="Rss:"):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def established_to(port):
    """TCP connections in ESTABLISHED state to 127.0.0.1:port (from /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port and fields[3] == "01":
                count += 1
    return count


def start_haproxy(pki, backend_port, connections):
    """HAProxy 2.6 terminating with the same certificate and verifying the same backend."""
    import harness
    import tempfile
    d = tempfile.mkdtemp(prefix="idle-haproxy-")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn {connections + 100}
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend vip
    bind 127.0.0.1:{port} ssl crt {pki}/www-ecdsa.full.pem
    default_backend p
backend p
    server b1 127.0.0.1:{backend_port} ssl verify required ca-file {pki}/internal-ca.pem verifyhost backend-1.internal.test
""")
    proc = harness.Process(["haproxy", "-db", "-f", f"{d}/haproxy.cfg"], name="haproxy")
    def listening():
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return True
        except OSError:
            return False
    try:
        harness.wait_for(listening, what="haproxy listening")
    except AssertionError:
        proc.stop()  # do not leave it running when it never came up
        raise
    proc.listen_port = port
    return proc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/app/ringlb"))
    ap.add_argument("--tls", default="1.3", choices=["1.2", "1.3"])
    ap.add_argument("--haproxy", action="store_true", help="measure HAProxy (apt) with the same setup instead")
    args = ap.parse_args()
    os.environ["RINGLB_BIN"] = os.path.abspath(args.bin)
    import harness
    pki = harness.test_pki()
    backend = harness.NginxTls("idle", cert="backend-1", extra_server="keepalive_timeout 600s;",
                               worker_connections=2 * args.connections + 100)
    config = f"""
[global]
workers = 1
access_log = false
max_connections = {args.connections + 100}
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "p"
[listener.tls]
certificates = ["{pki}/www-ecdsa.full.pem"]
[[pool]]
name = "p"
idle_timeout = "10m"
[pool.tls]
ca_file = "{pki}/internal-ca.pem"
verify_name = "backend-1.internal.test"
[[pool.backend]]
name = "b1"
address = "127.0.0.1:{backend.port}"
"""
    if args.haproxy:
        lb = start_haproxy(pki, backend.port, args.connections)
    else:
        lb = harness.RingLB(config, workers=1)
    conns = []
    try:
        port = lb.port() if not args.haproxy else lb.listen_port
        ctx = ssl.create_default_context(cafile=f"{pki}/public-ca.pem")
        if args.tls == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        # Warm up: one connection end to end, so lazily created state is not counted.
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="www.example.test") as s:
            s.sendall(b"GET /id HTTP/1.0\r\n\r\n")
            while s.recv(4096):
                pass
        time.sleep(0.5)
        before, anon_before = rss_kib(lb.proc.pid), rss_kib(lb.proc.pid, "Anonymous:")
        for _ in range(args.connections):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="www.example.test")
            conns.append(s)
        # Every client connection must have its backend connection, or the number below would
        # count half-built ones: wait until the backend holds them all.
        harness.wait_for(lambda: established_to(backend.port) >= args.connections, timeout=30,
                         what=f"{args.connections} connections established at the backend")
        time.sleep(0.5)
        after, anon_after = rss_kib(lb.proc.pid), rss_kib(lb.proc.pid, "Anonymous:")
        n = args.connections
        print(f"{'haproxy' if args.haproxy else 'ringlb'}: TLS {args.tls}, {n} idle terminated+re-encrypted connections:")
        print(f"  RSS       {before} KiB -> {after} KiB: {(after - before) * 1024 / n:.0f} bytes/connection")
        print(f"  anonymous {anon_before} KiB -> {anon_after} KiB: {(anon_after - anon_before) * 1024 / n:.0f} bytes/connection")
    finally:
        for s in conns:
            s.close()
        lb.stop()
        backend.stop()


if __name__ == "__main__":
    main()
