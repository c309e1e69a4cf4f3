"""Both relays (provided-buffer recv/send and splice through pipes) carry the same bytes,
propagate half-close and keep session affinity; the idle timeout ends silent connections."""
import hashlib
import os
import socket
import threading
import time
import unittest

from harness import IntegrationTest, RawBackend, SServer, client_hello, echo_transfer, s_client
from test_pipeline import backends, recv_all, recv_exact, vip_config


class RelayTest(IntegrationTest):
    RELAYS = ("buffers", "splice", "auto")  # auto hands bulk directions over mid-stream

    def _lb(self, relay, pool_body, **kw):
        return self.ringlb(vip_config(pool_body, global_extra=f'relay = "{relay}"'), **kw)

    def test_bulk_both_ways_is_byte_exact_on_each_relay(self):
        for relay in self.RELAYS:
            with self.subTest(relay=relay):
                backend = self.server(RawBackend("echo"))
                lb = self._lb(relay, backends(("b", backend.address)))
                sent, received, sent_digest, got_digest = echo_transfer(lb.port(), 24 << 20)
                self.assertEqual(received, sent)
                self.assertEqual(got_digest, sent_digest)
                log = self.stop_ringlb(lb)
                self.assertIn(f"relay={relay}", log)
                # What each direction ended on: auto hands a bulk direction over to splice.
                ended_on = "buffers,buffers" if relay == "buffers" else "splice,splice"
                self.assertIn(f" relay={ended_on} ", log)

    def test_half_close_on_each_relay(self):
        for relay in self.RELAYS:
            with self.subTest(relay=relay):
                backend = self.server(RawBackend("digest_on_eof"))
                lb = self._lb(relay, backends(("b", backend.address)))
                hello = client_hello("alpha.test")
                payload = os.urandom(200000)
                s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
                s.sendall(hello + payload)
                s.shutdown(socket.SHUT_WR)
                reply = recv_all(s).decode()
                s.close()
                digest = hashlib.sha256(hello + payload).hexdigest()
                self.assertEqual(reply, f"{digest} {len(hello) + len(payload)}\n")

    def test_affinity_on_the_splice_relay(self):
        # Direction backend->client is observed with recv/send until the server's
        # ChangeCipherSpec, then handed to splice: resumption must still land right.
        one = self.start(SServer("one", "alpha.test", ["-no_ticket"]))
        two = self.start(SServer("two", "alpha.test", ["-no_ticket"]))
        lb = self._lb("splice", 'algorithm = "round_robin"\n' + backends(("one", one.address), ("two", two.address)))
        sess = os.path.join(lb.dir, "sess.pem")
        _, out, _ = s_client(lb.port(), "alpha.test", ["-tls1_2", "-sess_out", sess], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("New,", out)
        for _ in range(4):
            _, out, _ = s_client(lb.port(), "alpha.test", ["-tls1_2", "-sess_in", sess],
                                 stdin=b"GET /id HTTP/1.0\r\n\r\n")
            self.assertIn("Reused,", out)

    def test_clients_that_never_read_do_not_starve_the_worker_buffer_ring(self):
        # One worker with a small ring: 30 connections whose client never reads while their
        # backend floods would pin every provided buffer if each could queue freely.
        flood = self.server(RawBackend("flood"))
        echo = self.server(RawBackend("echo"))
        lb = self.ringlb(f"""
[global]
buffers_per_worker = 256
buffer_size = 16384

[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "echo"
[[listener.route]]
sni = "slow.test"
pool = "flood"

[[pool]]
name = "flood"
[[pool.backend]]
name = "f"
address = "{flood.address}"
[[pool]]
name = "echo"
[[pool.backend]]
name = "e"
address = "{echo.address}"
""", workers=1)
        slow = []
        for _ in range(30):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", lb.port()))
            s.sendall(client_hello("slow.test"))
            slow.append(s)
        time.sleep(1.5)  # let the floods fill every socket buffer and queue
        hello = client_hello("fast.test")
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
        payload = os.urandom(2 << 20)
        t0 = time.monotonic()
        s.sendall(hello)
        self.assertEqual(recv_exact(s, len(hello)), hello)
        threading.Thread(target=s.sendall, args=(payload,), daemon=True).start()
        self.assertEqual(recv_exact(s, len(payload)), payload)
        self.assertLess(time.monotonic() - t0, 5.0)
        s.close()
        for c in slow:
            c.close()

    def test_idle_connection_is_closed_after_idle_timeout(self):
        for relay in self.RELAYS:
            with self.subTest(relay=relay):
                backend = self.server(RawBackend("echo"))
                lb = self._lb(relay, 'idle_timeout = "1s"\n' + backends(("b", backend.address)))
                hello = client_hello("alpha.test")
                s = socket.create_connection(("127.0.0.1", lb.port()), timeout=10)
                s.sendall(hello)
                self.assertEqual(len(recv_exact(s, len(hello))), len(hello))
                # Activity keeps it open past the timeout...
                for _ in range(3):
                    time.sleep(0.5)
                    s.sendall(b"ping")
                    self.assertEqual(recv_exact(s, 4), b"ping")
                # ...silence closes it.
                t0 = time.monotonic()
                self.assertEqual(recv_all(s), b"")
                self.assertLess(time.monotonic() - t0, 2.5)
                s.close()
                self.assertIn("end=idle_timeout", self.stop_ringlb(lb))


if __name__ == "__main__":
    unittest.main()
