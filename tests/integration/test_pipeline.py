"""The proxy pipeline end to end: failover, session affinity, half-close, bulk transfer,
concurrency, malformed and slow hellos, PROXY v2, unix and IPv6 endpoints, limits, drain."""
import concurrent.futures
import hashlib
import os
import re
import socket
import ssl
import struct
import tempfile
import threading
import time
import unittest

from harness import (IntegrationTest, RawBackend, SServer, client_hello, curl, echo_transfer, recv_exactly, s_client,
                     wait_for)
from proxy_v2 import parse_proxy_v2


def vip_config(pool_body, listener_extra="", global_extra="", binds='"127.0.0.1:0"'):
    return f"""
[global]
{global_extra}

[[listener]]
name = "vip"
bind = [{binds}]
default_pool = "p"
{listener_extra}

[[pool]]
name = "p"
{pool_body}
"""


def backends(*pairs):
    return "".join(f'[[pool.backend]]\nname = "{n}"\naddress = "{a}"\n' for n, a in pairs)


def closed_port_address():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def recv_all(sock, limit=1 << 30):
    chunks = []
    total = 0
    while total < limit:
        data = sock.recv(1 << 20)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


class PipelineTest(IntegrationTest):
    def test_dead_backend_is_skipped_and_the_next_one_serves(self):
        live = self.start(SServer("live", "alpha.test"))
        dead = closed_port_address()
        lb = self.ringlb(vip_config('algorithm = "round_robin"\nretries = 2\n' +
                                    backends(("dead", dead), ("live", live.address))))
        for _ in range(6):
            rc, out, err = curl(lb.port(), "alpha.test")
            self.assertEqual((rc, out), (0, "live"), err)
        log = self.stop_ringlb(lb)
        self.assertRegex(log, r"connect to backend dead \(127\.0\.0\.1:\d+\) failed: Connection refused; trying another")

    def test_all_backends_down_fails_fast(self):
        lb = self.ringlb(vip_config("retries = 1\n" + backends(("d1", closed_port_address()),
                                                                ("d2", closed_port_address()))))
        t0 = time.monotonic()
        rc, out, err = curl(lb.port(), "alpha.test")
        self.assertNotEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertIn("end=connect_failed", self.stop_ringlb(lb))

    def _resume_five_times(self, port, sess):
        results = []
        for _ in range(5):
            _, out, _ = s_client(port, "alpha.test", ["-tls1_2", "-sess_in", sess], stdin=b"GET /id HTTP/1.0\r\n\r\n")
            results.append(("Reused" in out, re.search(r"(one|two)\b", out.split("\n\n")[-1] or "")))
        return [r for r, _ in results]

    def test_tls12_resumption_returns_to_the_issuing_backend(self):
        # Two backends that do not share session state; round robin would alternate.
        one = self.start(SServer("one", "alpha.test", ["-no_ticket"]))
        two = self.start(SServer("two", "alpha.test", ["-no_ticket"]))
        lb = self.ringlb(vip_config('algorithm = "round_robin"\n' + backends(("one", one.address), ("two", two.address))))
        sess = os.path.join(lb.dir, "sess.pem")
        _, out, _ = s_client(lb.port(), "alpha.test", ["-tls1_2", "-sess_out", sess], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("New,", out)
        self.assertEqual(self._resume_five_times(lb.port(), sess), [True] * 5)

    def test_tls12_ticket_resumption_returns_to_the_issuing_backend(self):
        one = self.start(SServer("one", "alpha.test"))
        two = self.start(SServer("two", "alpha.test"))
        lb = self.ringlb(vip_config('algorithm = "round_robin"\n' + backends(("one", one.address), ("two", two.address))))
        sess = os.path.join(lb.dir, "sess.pem")
        _, out, _ = s_client(lb.port(), "alpha.test", ["-tls1_2", "-sess_out", sess], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("New,", out)
        self.assertEqual(self._resume_five_times(lb.port(), sess), [True] * 5)

    def test_without_affinity_resumption_misses_sometimes(self):
        # Control for the two tests above: proves they can fail.
        one = self.start(SServer("one", "alpha.test", ["-no_ticket"]))
        two = self.start(SServer("two", "alpha.test", ["-no_ticket"]))
        lb = self.ringlb(vip_config('algorithm = "round_robin"\naffinity = false\n' +
                                    backends(("one", one.address), ("two", two.address))))
        sess = os.path.join(lb.dir, "sess.pem")
        s_client(lb.port(), "alpha.test", ["-tls1_2", "-sess_out", sess], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn(False, self._resume_five_times(lb.port(), sess))

    def test_half_close_is_propagated_both_ways(self):
        backend = self.server(RawBackend("digest_on_eof"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        hello = client_hello("alpha.test")
        payload = os.urandom(300000)
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
        s.sendall(hello + payload)
        s.shutdown(socket.SHUT_WR)  # the backend replies only once it sees our EOF
        reply = recv_all(s).decode()
        s.close()
        expected = hashlib.sha256(hello + payload).hexdigest()
        self.assertEqual(reply, f"{expected} {len(hello) + len(payload)}\n")

    def test_64_mib_both_ways_byte_exact(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        sent, received, sent_digest, got_digest = echo_transfer(lb.port(), 64 << 20)
        self.assertEqual(received, sent)
        self.assertEqual(got_digest, sent_digest)
        log = self.stop_ringlb(lb)
        self.assertIn(f"bytes_in={sent} bytes_out={sent}", log)

    def test_500_concurrent_tls_connections(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        port = lb.port()
        n = 500
        ctx_hello = [client_hello(f"c{i}.test") for i in range(8)]
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            s.sendall(ctx_hello[i % 8] + f"conn-{i}".encode())
            socks.append(s)
        # All 500 are open at once; each gets its own bytes back.
        ok = 0
        for i, s in enumerate(socks):
            want = ctx_hello[i % 8] + f"conn-{i}".encode()
            ok += recv_exactly(s, len(want)) == want
        for s in socks:
            s.close()
        self.assertEqual(ok, n)
        wait_for(lambda: backend.connections == n, what="backend to see all connections")
        log = self.stop_ringlb(lb)
        self.assertEqual(log.count(" relay=buffers,buffers "), n, "small exchanges stay on the buffer relay")

    def test_malformed_hello_closes_only_its_connection(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        good = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        hello = client_hello("alpha.test")
        good.sendall(hello)
        self.assertEqual(len(recv_exact(good, len(hello))), len(hello))
        # Corrupt the SNI list length (inside the record): strictly invalid.
        bad_hello = bytearray(hello)
        idx = bad_hello.find(b"alpha.test")
        bad_hello[idx - 5] ^= 0x40
        bad = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        bad.sendall(bytes(bad_hello))
        reply = recv_all(bad)
        bad.close()
        self.assertEqual(reply, bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 50]), "decode_error alert, then close")
        good.sendall(b"still alive")
        self.assertEqual(recv_exact(good, 11), b"still alive")
        good.close()
        self.assertEqual(backend.connections, 1, "the malformed hello never reached a backend")
        log = self.stop_ringlb(lb)
        self.assertRegex(log, r"refusing invalid ClientHello: \S+")

    def test_connect_and_close_without_data_is_logged_as_client_closed(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        socket.create_connection(("127.0.0.1", lb.port()), timeout=5).close()  # e.g. keepalived's TCP probe
        wait_for(lambda: "end=client_closed" in lb.output(), what="access line")
        self.assertEqual(backend.connections, 0)
        self.assertNotIn("refusing invalid", self.stop_ringlb(lb))

    def test_hello_in_one_byte_records_trickled_in_pieces_is_routed(self):
        # The relay re-parses only when the parser's bytes_needed is reached; a hello cut into
        # 1-byte records and many TCP segments must still complete and be replayed unchanged.
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address))))
        hello = client_hello("alpha.test")
        body = hello[5:5 + struct.unpack("!H", hello[3:5])[0]]
        records = b"".join(b"\x16\x03\x01\x00\x01" + body[i:i + 1] for i in range(len(body)))
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(records), 97):
            s.sendall(records[i:i + 97])
            time.sleep(0.001)
        self.assertEqual(recv_exact(s, len(records)), records)
        s.close()
        self.assertIn("sni=alpha.test", self.stop_ringlb(lb))

    def test_trickled_hello_times_out_from_accept(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address)), 'client_hello_timeout = "1s"'))
        hello = client_hello("alpha.test")
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
        t0 = time.monotonic()
        closed_at = None
        for i in range(len(hello)):  # one byte every 50 ms would take many seconds
            try:
                s.sendall(hello[i:i + 1])
                time.sleep(0.05)
            except OSError:
                closed_at = time.monotonic()
                break
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed_at = time.monotonic()
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_at = time.monotonic()
                break
            s.setblocking(True)
        self.assertIsNotNone(closed_at, "connection was never closed")
        self.assertLess(closed_at - t0, 2.0)
        self.assertGreaterEqual(closed_at - t0, 0.9)
        self.assertEqual(backend.connections, 0)
        self.assertIn("end=hello_timeout", self.stop_ringlb(lb))

    def test_proxy_v2_header_reaches_the_backend(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config('proxy_protocol = "v2"\n' + backends(("b", backend.address))))
        hello = client_hello("alpha.test", alpn=["h2"])
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        client_port = s.getsockname()[1]
        s.sendall(hello)
        recv_exact(s, len(hello))  # echo of header+hello minus header length: read what arrives
        s.close()
        wait_for(lambda: backend.received and backend.received[0], what="backend data")
        h = parse_proxy_v2(backend.received[0])
        self.assertEqual((h["command"], h["family"], h["protocol"]), ("PROXY", "INET", "STREAM"))
        self.assertEqual(h["source"], ("127.0.0.1", client_port))
        self.assertEqual(h["destination"], ("127.0.0.1", lb.port()))
        ssl = h["tlvs"].pop("ssl")
        self.assertEqual(h["tlvs"], {"authority": "alpha.test", "alpn": "h2"})
        # Passthrough knows only that the client speaks TLS and what it offered.
        self.assertTrue(ssl["client_ssl"])
        self.assertFalse(ssl["client_cert_conn"])
        self.assertNotEqual(ssl["verify"], 0)
        self.assertEqual(ssl.get("version"), "TLSv1.3")
        self.assertEqual(h["rest"], hello)

    def test_unix_socket_backend_and_ipv6_listener(self):
        path = os.path.join(tempfile.mkdtemp(prefix="ringlb-unix-"), "backend.sock")
        backend = self.server(RawBackend("echo", unix_path=path))
        lb = self.ringlb(vip_config(backends(("u", backend.address)), binds='"[::1]:0"'))
        port = int(lb.listeners["vip"][0].rsplit(":", 1)[1])
        s = socket.create_connection(("::1", port), timeout=5)
        hello = client_hello("alpha.test")
        s.sendall(hello + b"over unix")
        self.assertEqual(recv_exact(s, len(hello) + 9), hello + b"over unix")
        s.close()

    def test_connection_limit_closes_extra_connections_and_logs(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address)), "max_connections = 2"), workers=1)
        hello = client_hello("alpha.test")
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
            s.sendall(hello)
            recv_exact(s, len(hello))
            held.append(s)
        extra = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        try:
            extra.sendall(hello)
            reply = recv_all(extra)  # closed at accept: EOF, or RST because our hello was unread
        except ConnectionResetError:
            reply = b""
        extra.close()
        self.assertEqual(reply, b"")
        self.assertEqual(backend.connections, 2)
        for s in held:
            s.close()
        log = self.stop_ringlb(lb)
        self.assertIn("max_connections=2 reached", log)

    def test_sigterm_drains_live_connections_and_refuses_new_ones(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address)), global_extra='drain_timeout = "5s"'))
        port = lb.port()
        hello = client_hello("alpha.test")
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(hello)
        recv_exact(s, len(hello))
        lb.proc.send_signal(15)
        wait_for(lambda: "stopped accepting" in lb.output(), what="drain to start")
        with self.assertRaises(OSError):
            c = socket.create_connection(("127.0.0.1", port), timeout=2)
            c.sendall(hello)
            if c.recv(1) == b"":
                raise ConnectionResetError("closed")
        # logrotate's SIGHUP and an impatient second Ctrl-C during the drain must not kill it
        # (regression: signals were unblocked in spdlog's thread).
        lb.proc.send_signal(1)
        lb.proc.send_signal(2)
        time.sleep(0.3)
        s.sendall(b"after sigterm")
        self.assertEqual(recv_exact(s, 13), b"after sigterm")
        self.assertTrue(lb.alive())
        s.close()
        lb.proc.wait(10)
        self.assertEqual(lb.proc.returncode, 0)

    def test_drain_deadline_closes_stragglers(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(vip_config(backends(("b", backend.address)), global_extra='drain_timeout = "500ms"'))
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        hello = client_hello("alpha.test")
        s.sendall(hello)
        recv_exact(s, len(hello))
        t0 = time.monotonic()
        lb.proc.send_signal(15)
        lb.proc.wait(10)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(lb.proc.returncode, 0)
        self.assertEqual(recv_all(s), b"")
        self.assertIn("end=draining", lb.output())


def recv_exact(sock, n):
    got = b""
    while len(got) < n:
        data = sock.recv(n - len(got))
        if not data:
            break
        got += data
    return got


if __name__ == "__main__":
    unittest.main()
