"""Both relays (provided-buffer recv/send and splice through pipes) carry the same bytes,
propagate half-close and keep session affinity; the idle timeout ends silent connections."""
import hashlib
import os
import socket
import threading
import time
import unittest

from harness import IntegrationTest, RawBackend, SServer, client_hello, s_client, wait_for
from test_pipeline import backends, recv_all, recv_exact, vip_config


class RelayTest(IntegrationTest):
    RELAYS = ("buffers", "splice")

    def _lb(self, relay, pool_body, **kw):
        return self.ringlb(vip_config(pool_body, global_extra=f'relay = "{relay}"'), **kw)

    def test_bulk_both_ways_is_byte_exact_on_each_relay(self):
        for relay in self.RELAYS:
            with self.subTest(relay=relay):
                backend = self.server(RawBackend("echo"))
                lb = self._lb(relay, backends(("b", backend.address)))
                hello = client_hello("alpha.test")
                size = 24 << 20
                sent = hashlib.sha256(hello)
                s = socket.create_connection(("127.0.0.1", lb.port()), timeout=30)

                def writer():
                    s.sendall(hello)
                    block = os.urandom(1 << 20)
                    for i in range(size // len(block)):
                        chunk = bytes([i & 0xff]) + block[1:]
                        sent.update(chunk)
                        s.sendall(chunk)
                    s.shutdown(socket.SHUT_WR)

                t = threading.Thread(target=writer)
                t.start()
                got = hashlib.sha256()
                total = 0
                while True:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    got.update(data)
                    total += len(data)
                t.join()
                s.close()
                self.assertEqual(total, size + len(hello))
                self.assertEqual(got.hexdigest(), sent.hexdigest())
                self.assertIn(f"relay={relay}", self.stop_ringlb(lb))

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
