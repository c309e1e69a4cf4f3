"""Hot reload (SIGHUP): new connections take the new configuration, established ones finish on
the old, listeners that remain are never closed, and a bad configuration or unreadable key
leaves the running one untouched."""
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import (_unused_port, EchoBackend, EchoLoad, echo_once, IntegrationTest, RawBackend, public_tls, s_client_tls, test_pki,
                     tls_get, http_body,
                     toml_keys, wait_for)


def plain_config(backends, extra_listener="", pool_keys=""):
    """A passthrough listener that sends non-TLS connections to pool p (echo backends)."""
    text = f"""
[global]
log_level = "info"

[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "p"
on_not_tls = "default"
{extra_listener}

[[pool]]
name = "p"
{pool_keys}
"""
    for name, address in backends:
        text += f'[[pool.backend]]\nname = "{name}"\naddress = "{address}"\n'
    return text


class ReloadTest(IntegrationTest):
    def write_config(self, lb, text):
        tmp = lb.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, lb.config_path)

    def reloads_applied(self, lb):
        return lb.output().count("reload of ")

    def reload(self, lb, text, expect_ok=True):
        before_ok = lb.output().count(" applied: generation")
        before_fail = lb.output().count("failed: still serving the previous configuration")
        self.write_config(lb, text)
        os.kill(lb.proc.pid, signal.SIGHUP)
        if expect_ok:
            wait_for(lambda: lb.output().count(" applied: generation") > before_ok or
                     lb.output().count("failed: still serving") > before_fail, what="reload to finish")
            self.assertGreater(lb.output().count(" applied: generation"), before_ok, lb.output()[-3000:])
        else:
            wait_for(lambda: lb.output().count("failed: still serving the previous configuration") > before_fail,
                     what="reload to fail")

    def echo(self, port, payload=b"hello\n"):
        return echo_once(port, payload)

    def test_fifty_reloads_under_load_lose_and_refuse_no_connection(self):
        a = self.server(RawBackend("echo"))
        b = self.server(RawBackend("echo"))
        configs = [plain_config([("a", a.address), ("b", b.address)]),
                   plain_config([("a", a.address)], pool_keys='algorithm = "least_conn"'),
                   plain_config([("b", b.address), ("a", a.address)],
                                extra_listener='[[listener.route]]\nsni = "x.example.test"\npool = "p"\n')]
        lb = self.ringlb(configs[0])
        load = EchoLoad(lb.port(), threads=4, max_seconds=180)
        try:
            load.wait_ok(50)
            for i in range(50):
                self.reload(lb, configs[(i + 1) % len(configs)])
                time.sleep(0.02)
            start_ok = load.ok
            load.wait_ok(start_ok + 50)
        finally:
            ok, failures = load.stop()
        print(f"\n50 reloads under load: {ok} connections ok, {len(failures)} failed")
        self.assertEqual(failures, [], f"{len(failures)} failed of {ok + len(failures)}")
        self.assertGreater(ok, 200)
        log = self.stop_ringlb(lb)
        self.assertEqual(log.count(" applied: generation"), 50)
        self.assertEqual(log.count("listening on"), 1, "the listener must be kept, never re-opened")

    def test_new_connections_use_the_new_config_while_established_ones_continue(self):
        a = self.server(RawBackend("echo"))
        b = self.server(RawBackend("echo"))
        lb = self.ringlb(plain_config([("a", a.address)]))
        held = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        held.sendall(b"before\n")
        self.assertEqual(held.recv(100), b"before\n")
        self.reload(lb, plain_config([("b", b.address)]))
        self.assertEqual(self.echo(lb.port(), b"after\n"), b"after\n")
        wait_for(lambda: b.connections == 1, what="the new connection at backend b")
        # The connection made before the reload still flows, through backend a.
        held.sendall(b"still here\n")
        self.assertEqual(held.recv(100), b"still here\n")
        self.assertEqual(a.connections, 1)
        self.assertIn(b"still here", a.received[0] if a.received[0] else b"still here")
        held.close()
        log = self.stop_ringlb(lb)
        ends = [line for line in log.splitlines() if " access " in line]
        self.assertTrue(any("backend=a" in line for line in ends), ends)
        self.assertTrue(any("backend=b" in line for line in ends), ends)

    def test_broken_config_keeps_the_old_one_and_says_why(self):
        a = self.server(RawBackend("echo"))
        good = plain_config([("a", a.address)])
        lb = self.ringlb(good)
        self.reload(lb, good.replace('default_pool = "p"', 'default_pool = "nope"'), expect_ok=False)
        self.assertRegex(lb.output(), r'ringlb\.toml:\d+:\d+: default_pool of \[\[listener\]\] "vip" names unknown pool "nope"')
        self.assertEqual(self.echo(lb.port()), b"hello\n")
        self.reload(lb, "this is [not toml", expect_ok=False)
        self.assertIn("TOML syntax error", lb.output())
        self.assertEqual(self.echo(lb.port()), b"hello\n")
        self.reload(lb, good)  # and a good one still applies afterwards
        self.assertEqual(self.echo(lb.port()), b"hello\n")
        self.stop_ringlb(lb)

    def test_unreadable_key_keeps_the_old_certificates(self):
        d = test_pki()
        nginx = self.nginx("n1", cert="backend-1")
        text = ("[global]\nlog_level = \"info\"\n[[listener]]\nname = \"vip\"\nbind = [\"127.0.0.1:0\"]\n"
                "mode = \"terminate\"\ndefault_pool = \"p\"\n[listener.tls]\n" + toml_keys(public_tls()) +
                f'[[pool]]\nname = "p"\n[pool.tls]\nca_file = "{d}/internal-ca.pem"\n'
                f'[[pool.backend]]\nname = "n1"\naddress = "{nginx.address}"\ntls_name = "backend-1.internal.test"\n')
        lb = self.ringlb(text)
        status, body = http_body(tls_get(lb.port()))
        self.assertIn("200", status)
        missing = os.path.join(lb.dir, "missing.pem")
        self.reload(lb, text.replace(f"{d}/default.full.pem", missing), expect_ok=False)
        self.assertIn(missing, lb.output())
        status, body = http_body(tls_get(lb.port()))
        self.assertIn("200", status)
        self.assertTrue(body.startswith(b"id=n1"), body)
        garbage = os.path.join(lb.dir, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
        self.reload(lb, text.replace(f"{d}/default.full.pem", garbage), expect_ok=False)
        self.assertIn(garbage, lb.output())
        self.assertTrue(http_body(tls_get(lb.port()))[1].startswith(b"id=n1"))
        self.stop_ringlb(lb)

    def test_reload_picks_up_rewritten_certificates_and_ticket_keys(self):
        d = test_pki()
        nginx = self.nginx("n1", cert="backend-1")
        cert = os.path.join(self.tmpdir(), "served.pem")
        keys = os.path.join(self.tmpdir(), "tickets.key")
        shutil.copy(f"{d}/default.full.pem", cert)
        shutil.copy(f"{d}/tickets-a.key", keys)
        text = ("[global]\nlog_level = \"info\"\n[[listener]]\nname = \"vip\"\nbind = [\"127.0.0.1:0\"]\n"
                "mode = \"terminate\"\ndefault_pool = \"p\"\n[listener.tls]\n" +
                toml_keys({"certificates": [cert], "ticket_key_file": keys}) +
                f'[[pool]]\nname = "p"\n[pool.tls]\nca_file = "{d}/internal-ca.pem"\n'
                f'[[pool.backend]]\nname = "n1"\naddress = "{nginx.address}"\ntls_name = "backend-1.internal.test"\n')
        lb = self.ringlb(text)
        session = os.path.join(self.tmpdir(), "session.pem")
        first = s_client_tls(lb.port(), ca="public-ca", tls_version="1.2", sess_out=session, request="/id")
        self.assertEqual(first.peer_cn, "default.example.test")
        self.assertTrue(s_client_tls(lb.port(), ca="public-ca", tls_version="1.2", sess_in=session,
                                     request="/id").reused)
        # Renewal tooling rewrites the files in place, then reloads.
        shutil.copy(f"{d}/wildcard-apps.full.pem", cert + ".new")
        os.replace(cert + ".new", cert)
        shutil.copy(f"{d}/tickets-b.key", keys)
        self.reload(lb, text)
        after = s_client_tls(lb.port(), ca="public-ca", tls_version="1.2", sess_in=session, request="/id")
        self.assertEqual(after.peer_cn, "*.apps.example.test")
        self.assertFalse(after.reused, "a ticket under the old keys must not resume after the key change")
        self.stop_ringlb(lb)

    def tmpdir(self):
        if not hasattr(self, "_tmp"):
            self._tmp = tempfile.mkdtemp(prefix="ringlb-reload-")
        return self._tmp

    def test_listeners_added_and_removed_by_reload(self):
        a = self.server(RawBackend("echo"))
        base = plain_config([("a", a.address)])
        second = '\n[[listener]]\nname = "extra"\nbind = ["127.0.0.1:0"]\ndefault_pool = "p"\non_not_tls = "default"\n'
        lb = self.ringlb(base)
        port = lb.port()
        self.reload(lb, base + second)
        def ready_lines():
            with open(lb.ready_path) as f:
                return f.read().splitlines()
        wait_for(lambda: any(" extra " in line for line in ready_lines()), what="ready file to list the new listener")
        extra_port = int(next(line for line in ready_lines() if " extra " in line).rsplit(":", 1)[1])
        self.assertEqual(self.echo(extra_port), b"hello\n")
        self.assertEqual(self.echo(port), b"hello\n")
        self.reload(lb, base)
        with self.assertRaises(ConnectionRefusedError):
            self.echo(extra_port)
        self.assertEqual(self.echo(port), b"hello\n")
        # A unix listener removed by a reload leaves no socket file behind; a renamed listener
        # keeps its socket and is reported under its new name.
        unix_path = os.path.join(self.tmpdir(), "vip.sock")
        with_unix = base + f'\n[[listener]]\nname = "local"\nbind = ["unix:{unix_path}"]\ndefault_pool = "p"\non_not_tls = "default"\n'
        self.reload(lb, with_unix)
        self.assertTrue(os.path.exists(unix_path))
        self.reload(lb, base)
        self.assertFalse(os.path.exists(unix_path))
        self.assertEqual(self.echo(port), b"hello\n")
        self.stop_ringlb(lb)

    def test_a_renamed_listener_keeps_its_socket_under_the_new_name(self):
        a = self.server(RawBackend("echo"))
        fixed = f"127.0.0.1:{_unused_port('127.0.0.1')}"
        base = plain_config([("a", a.address)]).replace('bind = ["127.0.0.1:0"]', f'bind = ["{fixed}"]')
        lb = self.ringlb(base)
        held = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)  # accepted before the rename
        self.reload(lb, base.replace('name = "vip"', 'name = "renamed"'))
        with open(lb.ready_path) as f:
            self.assertEqual(f.read().split(), ["listener", "renamed", fixed])
        self.assertEqual(self.echo(lb.port()), b"hello\n")
        held.sendall(b"still\n")
        self.assertEqual(held.recv(100), b"still\n")
        held.close()
        log = self.stop_ringlb(lb)
        self.assertEqual(log.count("listening on"), 1, "the socket was kept, not re-opened")

    def test_sigterm_right_after_sighup_with_checks_in_flight_exits(self):
        # Every HTTP check hangs (in flight until its 30 s timeout), so a reload leaves the
        # retired generation's checkers stopping; a SIGTERM handled in the same loop turn
        # stopped them a second time, counted them twice, and the worker never exited.
        hangs = [self.start(EchoBackend(f"h{i}", hang_health=True)) for i in range(4)]
        text = plain_config([(f"h{i}", h.address) for i, h in enumerate(hangs)])
        text += ('[pool.health]\ntype = "http"\npath = "/health"\ninterval = "30s"\n'
                 'fast_interval = "100ms"\ntimeout = "30s"\n')
        for attempt in range(8):
            lb = self.ringlb(text, workers=2)
            time.sleep(0.3)  # the first checks start within 10 ms + a fraction of fast_interval
            os.kill(lb.proc.pid, signal.SIGHUP)
            os.kill(lb.proc.pid, signal.SIGTERM)
            try:
                rc = lb.proc.wait(15)
            except Exception:
                lb.proc.kill()
                lb.proc.wait()
                self.fail(f"attempt {attempt}: ringlb did not exit after SIGHUP + SIGTERM; log:\n"
                          f"{lb.output()[-3000:]}")
            lb.log.close()
            self.assertEqual(rc, 0, lb.output()[-3000:])


if __name__ == "__main__":
    unittest.main()
