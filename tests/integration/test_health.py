"""Active health checks, passive ejection and the pool lifecycle with real backends: a killed
backend under load, a hanging HTTP backend, a TLS check with a wrong-name certificate, backup
servers, all-down fast failure, and health state kept across a reload."""
import os
import re
import signal
import socket
import ssl
import struct
import time
import unittest

from harness import (EchoBackend, EchoLoad, IntegrationTest, client_hello, echo_once as echo, test_pki, toml_keys,
                     wait_for)


def config(backends, health=None, pool_keys="", listener_extra="", global_extra=""):
    """A passthrough listener sending non-TLS connections (and TLS ones) to pool p."""
    text = f"""
[global]
log_level = "info"
{global_extra}

[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "p"
on_not_tls = "default"
{listener_extra}

[[pool]]
name = "p"
connect_timeout = "1s"
{pool_keys}
"""
    if health:
        text += "[pool.health]\n" + toml_keys(health)
    for b in backends:
        name, address = b[0], b[1]
        text += f'[[pool.backend]]\nname = "{name}"\naddress = "{address}"\n'
        if len(b) > 2 and b[2]:
            text += "backup = true\n"
    return text


class HealthTest(IntegrationTest):
    def log_time_of(self, lb, pattern, timeout=15):
        """Waits for `pattern` in ringlb's log; returns time.monotonic() when it was seen."""
        wait_for(lambda: re.search(pattern, lb.output()), timeout=timeout, interval=0.01, what=pattern)
        return time.monotonic()

    def assertEchoed(self, backend, count, msg=None):
        """The backend logs a connection after it ended: wait for `count`, then check it stays."""
        wait_for(lambda: backend.echoed() >= count, timeout=5, what=f"{backend.name} to log {count} connections")
        time.sleep(0.1)
        self.assertEqual(backend.echoed(), count, msg)

    def test_killed_backend_under_load_is_marked_down_and_no_new_connection_fails(self):
        backends = [self.start(EchoBackend(n)) for n in ("a", "b", "c")]
        interval, fall, rise = 0.4, 2, 2
        lb = self.ringlb(config([(b.name[5:], b.address) for b in backends],
                                health={"type": "tcp", "interval": "400ms", "fast_interval": "200ms",
                                        "timeout": "300ms", "rise": rise, "fall": fall}))
        self.log_time_of(lb, r"listening on")
        load = EchoLoad(lb.port(), threads=4, max_seconds=120)
        try:
            load.wait_ok(100)
            victim = backends[1]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            dead_at = time.monotonic()  # reaped: its sockets are closed
            down_at = self.log_time_of(lb, r"backend b \(127\.0\.0\.1:\d+\): health check DOWN after 2 failed checks: "
                                           r"connection refused")
            # fall x interval, plus one interval of phase, the jitter and the check timeout.
            self.assertLess(down_at - dead_at, fall * interval + interval + 0.3 + 0.5)
            load.wait_ok(load.ok + 200)
            # Restart on the same port: back in rotation after `rise` successful checks.
            revived = self.start(EchoBackend("b", port=victim.port))
            self.log_time_of(lb, r"backend b \(127\.0\.0\.1:\d+\): health check UP after 2 successful checks")
            wait_for(lambda: revived.echoed() >= 5, what="traffic to reach the restarted backend")
        finally:
            ok, failures = load.stop()
        print(f"\nkill under load: {ok} ok, {len(failures)} failed: {failures}")
        late = [f for f, t in zip(failures, load.failure_starts) if t >= dead_at]
        self.assertEqual(late, [], f"connections started after the backend died failed ({ok} ok)")
        # The ones in flight at the kill may fail (their backend died); nothing else may.
        self.assertLessEqual(len(failures), 4, failures)
        log = self.stop_ringlb(lb)
        self.assertIsNotNone(re.search(r"connect to backend b .* failed: Connection refused; trying another backend",
                                       log), "connections that picked b before it was marked down were retried")

    def test_http_check_timeout_marks_a_hanging_backend_down(self):
        good = self.start(EchoBackend("good"))
        hang = self.start(EchoBackend("hang", hang_health=True))
        lb = self.ringlb(config([("good", good.address), ("hang", hang.address)],
                                health={"type": "http", "path": "/health", "interval": "300ms",
                                        "timeout": "250ms", "fall": 2, "rise": 1}))
        self.log_time_of(lb, r"backend hang \(127\.0\.0\.1:\d+\): health check DOWN after 2 failed checks: "
                             r"timeout after 250 ms \(waiting for response\)")
        self.assertNotRegex(lb.output(), r"backend good .*DOWN")
        # Only the healthy backend gets connections now.
        for _ in range(6):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(good, 6)
        self.assertEchoed(hang, 0)
        self.stop_ringlb(lb)

    def test_http_check_status_and_body(self):
        ok = self.start(EchoBackend("ok"))
        failing = self.start(EchoBackend("failing", health_status=503))
        lb = self.ringlb(config([("ok", ok.address), ("failing", failing.address)],
                                health={"type": "http", "interval": "300ms", "timeout": "250ms", "fall": 1,
                                        "rise": 1, "expect_status": ["200"], "expect_body": "ok"}))
        self.log_time_of(lb, r"backend failing .*health check DOWN after 1 failed checks: HTTP 503")
        time.sleep(0.7)
        self.assertNotRegex(lb.output(), r"backend ok .*DOWN")
        self.stop_ringlb(lb)

    def test_tls_check_against_a_wrong_name_certificate_fails_with_that_reason(self):
        d = test_pki()
        good = self.nginx("good", cert="backend-1")
        wrong = self.nginx("wrong", cert="backend-wrongname")
        text = config([("good", good.address), ("wrong", wrong.address)],
                      health={"type": "tls", "interval": "300ms", "timeout": "250ms", "fall": 1, "rise": 1})
        text += f'[pool.health.tls]\nca_file = "{d}/internal-ca.pem"\nsni = "backend-1.internal.test"\n'
        # The TLS table must follow [pool.health], before the backends: rebuild in that order.
        text = config([], health={"type": "tls", "interval": "300ms", "timeout": "250ms", "fall": 1, "rise": 1})
        text += f'[pool.health.tls]\nca_file = "{d}/internal-ca.pem"\nsni = "backend-1.internal.test"\n'
        for name, n in (("good", good), ("wrong", wrong)):
            text += f'[[pool.backend]]\nname = "{name}"\naddress = "{n.address}"\n'
        lb = self.ringlb(text)
        self.log_time_of(lb, r"backend wrong .*health check DOWN after 1 failed checks: TLS.*Hostname mismatch")
        time.sleep(0.7)
        self.assertNotRegex(lb.output(), r"backend good .*DOWN")
        # The data path is passthrough: a client's TLS goes to the good backend only.
        ctx = ssl.create_default_context(cafile=f"{d}/internal-ca.pem")
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", lb.port()), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="backend-1.internal.test") as tls:
                    tls.sendall(b"GET /id HTTP/1.0\r\n\r\n")
                    self.assertIn(b"id=good", tls.recv(4096))
        self.stop_ringlb(lb)

    def test_backup_takes_over_only_when_every_primary_is_down(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        spare = self.start(EchoBackend("spare"))
        lb = self.ringlb(config([("a", a.address), ("b", b.address), ("spare", spare.address, True)],
                                health={"type": "tcp", "interval": "300ms", "timeout": "200ms", "fall": 1,
                                        "rise": 1}))
        for _ in range(8):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(spare, 0)
        a.stop(signal.SIGKILL)
        self.log_time_of(lb, r"backend a .*health check DOWN")
        for _ in range(4):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(spare, 0, "one primary is still up")
        b.stop(signal.SIGKILL)
        self.log_time_of(lb, r"backend b .*health check DOWN")
        for _ in range(4):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(spare, 4)
        revived = self.start(EchoBackend("a", port=a.port))
        self.log_time_of(lb, r"backend a .*health check UP")
        for _ in range(4):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(revived, 4)
        self.assertEchoed(spare, 4, "the primary is back: the backup gets nothing new")
        self.stop_ringlb(lb)

    def test_all_backends_down_fails_fast_with_an_alert_and_a_log_line(self):
        a = self.start(EchoBackend("a"))
        lb = self.ringlb(config([("a", a.address)], health={"type": "tcp", "interval": "300ms", "timeout": "200ms",
                                                            "fall": 1, "rise": 1}))
        a.stop(signal.SIGKILL)
        self.log_time_of(lb, r"backend a .*health check DOWN")
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", lb.port()), timeout=5) as s:
            s.sendall(client_hello("www.example.test"))
            reply = s.recv(100)
        elapsed = time.monotonic() - started
        self.assertEqual(reply, bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 80]), "a fatal internal_error alert")
        self.assertLess(elapsed, 0.5)
        log = self.stop_ringlb(lb)
        self.assertIn("pool p: no backend available (all 1 down, ejected, draining or in maintenance)", log)
        self.assertIn("end=no_backend", log)

    def test_passive_ejection_without_active_checks(self):
        a = self.start(EchoBackend("a"))
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_address = f"127.0.0.1:{dead.getsockname()[1]}"
        dead.close()
        lb = self.ringlb(config([("a", a.address), ("dead", dead_address)],
                                pool_keys='eject_after = 2\neject_for = "30s"\nalgorithm = "round_robin"'))
        for _ in range(10):
            self.assertEqual(echo(lb.port()), b"ping\n")  # connect retry hides the dead backend
        log = lb.output()
        self.assertRegex(log, r"pool p backend dead \(127\.0\.0\.1:\d+\): ejected for 30000 ms after 2 consecutive "
                              r"failures \(last: Connection refused\)")
        # Ejected: no more connect attempts to it.
        attempts = log.count("connect to backend dead")
        self.assertEqual(attempts, 2)
        self.stop_ringlb(lb)

    def test_passive_ejection_of_a_backend_that_resets_before_answering(self):
        # conf/README: a reset before any response byte counts towards eject_after. The TCP
        # connect to such a backend succeeds, and that success used to reset the count every
        # time, so with eject_after >= 2 it was never ejected.
        a = self.start(EchoBackend("a"))
        rst = socket.socket()
        rst.bind(("127.0.0.1", 0))
        rst.listen(64)
        rst_address = f"127.0.0.1:{rst.getsockname()[1]}"
        stop = []

        def reset_all():
            rst.settimeout(0.2)
            while not stop:
                try:
                    conn, _ = rst.accept()
                except OSError:
                    continue
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
        import threading
        t = threading.Thread(target=reset_all, daemon=True)
        t.start()
        try:
            lb = self.ringlb(config([("a", a.address), ("rst", rst_address)],
                                    pool_keys='eject_after = 2\neject_for = "30s"\nalgorithm = "round_robin"'))
            for _ in range(8):
                try:
                    echo(lb.port())
                except OSError:
                    pass
            self.log_time_of(lb, r"pool p backend rst \(127\.0\.0\.1:\d+\): ejected for 30000 ms after 2 "
                                 r"consecutive failures \(last: reset before any response byte\)", timeout=5)
            self.stop_ringlb(lb)
        finally:
            stop.append(True)
            t.join()
            rst.close()

    def test_reload_keeps_the_health_state_of_unchanged_backends(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        health = {"type": "tcp", "interval": "2s", "fast_interval": "2s", "timeout": "200ms", "fall": 1, "rise": 3}
        text = config([("a", a.address), ("b", b.address)], health=health)
        lb = self.ringlb(text)
        b.stop(signal.SIGKILL)
        self.log_time_of(lb, r"backend b .*health check DOWN")
        revived = self.start(EchoBackend("b", port=b.port))
        # Reload with a change elsewhere; b is unchanged, so it stays down (rise = 3 checks at
        # 2 s), and no connection goes to it right after the reload.
        with open(lb.config_path, "w") as f:
            f.write(text.replace('connect_timeout = "1s"', 'connect_timeout = "2s"'))
        os.kill(lb.proc.pid, signal.SIGHUP)
        self.log_time_of(lb, r"applied: generation 2")
        for _ in range(6):
            self.assertEqual(echo(lb.port()), b"ping\n")
        self.assertEchoed(revived, 0)
        self.stop_ringlb(lb)

    def test_check_port_different_from_the_traffic_port(self):
        traffic = self.start(EchoBackend("traffic"))
        health_endpoint = self.start(EchoBackend("health"))
        text = config([("a", traffic.address)], health={"type": "http", "port": health_endpoint.port,
                                                         "interval": "300ms", "timeout": "250ms", "fall": 1,
                                                         "rise": 1})
        lb = self.ringlb(text)
        self.assertEqual(echo(lb.port()), b"ping\n")
        # The traffic port is fine, but the check port dies: the backend goes down.
        health_endpoint.stop(signal.SIGKILL)
        self.log_time_of(lb, r"backend a \(127\.0\.0\.1:\d+\): health check DOWN after 1 failed checks: "
                             r"connection refused")
        self.assertNotEqual(f"127.0.0.1:{health_endpoint.port}", traffic.address)
        self.stop_ringlb(lb)


if __name__ == "__main__":
    unittest.main()
