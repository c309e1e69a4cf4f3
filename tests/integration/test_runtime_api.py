"""The runtime API (unix socket, HAProxy's CLI subset) and the admin listener (Prometheus
metrics, status page), driven the way deployment tooling drives HAProxy: socat, curl and
promtool, against the real binary with real backends."""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import (EchoBackend, IntegrationTest, echo_once as echo, public_tls, recv_exactly, s_client_tls, test_pki,
                     toml_keys, wait_for)

PROMTOOL = shutil.which("promtool")


def config(sock_path, backends, health=None, mode="0600", extra_global="", tls=False):
    text = f"""
[global]
log_level = "info"
runtime_socket = "{sock_path}"
runtime_socket_mode = "{mode}"
{extra_global}

[admin]
bind = "127.0.0.1:0"

[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "p"
on_not_tls = "default"
"""
    if tls:
        text = text.replace('on_not_tls = "default"', 'mode = "terminate"') + "[listener.tls]\n" + toml_keys(public_tls())
    text += '\n[[pool]]\nname = "p"\n'
    if health:
        text += "[pool.health]\n" + toml_keys(health)
    for name, address in backends:
        text += f'[[pool.backend]]\nname = "{name}"\naddress = "{address}"\n'
    return text


def socat(path, command):
    """`echo COMMAND | socat stdio UNIX-CONNECT:PATH`, as keepalived check scripts do."""
    r = subprocess.run(["socat", "stdio", f"UNIX-CONNECT:{path}"], input=(command + "\n").encode(),
                       capture_output=True, timeout=10)
    if r.returncode != 0:
        raise AssertionError(f"socat failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


# Prometheus text format 0.0.4, strictly: every sample belongs to the family of the HELP and
# TYPE lines before it, names and labels are well formed, values are floats, counters end in
# _total, and no series repeats.
METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_prometheus(text):
    families, series, current = {}, {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            current = name
            families[name] = None
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if name != current or kind not in ("counter", "gauge"):
                raise AssertionError(f"bad TYPE line: {line}")
            families[name] = kind
            continue
        if not line or line.startswith("#"):
            raise AssertionError(f"unexpected line: {line!r}")
        m = METRIC.match(line)
        if not m:
            raise AssertionError(f"malformed sample: {line!r}")
        name, _, labels_text, value = m.groups()
        if name != current:
            raise AssertionError(f"sample {name} outside its family ({current})")
        if families[name] == "counter" and not name.endswith("_total"):
            raise AssertionError(f"counter {name} does not end in _total")
        labels = {}
        rest = labels_text or ""
        while rest:
            lm = LABEL.match(rest)
            if not lm:
                raise AssertionError(f"malformed labels in {line!r}")
            labels[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        float(value)
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise AssertionError(f"duplicate series {key}")
        series[key] = float(value)
    return series


def metric(series, name, **labels):
    return series[(name, tuple(sorted(labels.items())))]


class RuntimeApiTest(IntegrationTest):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="ringlb-api-")
        self.sock = os.path.join(self.tmp, "admin.sock")

    def admin_url(self, lb, path):
        return f"http://{lb.listeners['@admin'][0]}{path}"

    def get(self, lb, path):
        with urllib.request.urlopen(self.admin_url(lb, path), timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def test_show_info_and_show_stat_through_socat(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        lb = self.ringlb(config(self.sock, [("a", a.address), ("b", b.address)], mode="0660",
                                health={"type": "tcp", "interval": "300ms", "timeout": "200ms"}))
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)
        info = socat(self.sock, "show info")
        fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
        self.assertEqual(fields["Name"], "ringlb")
        self.assertEqual(fields["Pid"], str(lb.proc.pid))
        self.assertEqual(fields["Nbthread"], "2")
        for _ in range(3):
            self.assertEqual(echo(lb.port()), b"ping\n")
        wait_for(lambda: "UP" in socat(self.sock, "show stat"), what="checks to report UP")
        csv = socat(self.sock, "show stat").strip().splitlines()
        header = csv[0].lstrip("# ").split(",")
        self.assertEqual(header[:8], ["pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot"])
        rows = {(r[0], r[1]): dict(zip(header, r)) for r in (line.split(",") for line in csv[1:])}
        self.assertEqual(rows[("vip", "FRONTEND")]["stot"], "3")
        self.assertEqual(rows[("p", "a")]["status"], "UP")
        self.assertEqual(rows[("p", "a")]["type"], "2")
        self.assertEqual(int(rows[("p", "a")]["stot"]) + int(rows[("p", "b")]["stot"]), 3)
        self.assertEqual(rows[("p", "BACKEND")]["type"], "1")
        # Interactive use (socat - UNIX-CONNECT, no half-close) gets the answer too.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(b"show info\n")
            got = b""
            while b"Uptime_sec" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"Name: ringlb", got)
        self.assertIn("Unknown command", socat(self.sock, "show nonsense"))
        self.stop_ringlb(lb)

    def test_drain_lets_a_live_transfer_finish_while_new_connections_go_elsewhere(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        lb = self.ringlb(config(self.sock, [("a", a.address), ("b", b.address)]))
        # Find a connection that went to a.
        held = None
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
            s.sendall(b"x\n")
            s.recv(10)
            stat_rows = [line.split(",") for line in socat(self.sock, "show stat").splitlines()[1:]]
            a_active = next(int(r[4]) for r in stat_rows if r[:2] == ["p", "a"])
            if a_active == 1:
                held = s
                break
            s.close()
        self.assertIsNotNone(held, "no connection landed on backend a")
        self.assertEqual(socat(self.sock, "set server p/a state drain").strip(), "")
        self.assertIn("DRAIN", socat(self.sock, "show stat"))

        def stot():
            rows = [line.split(",") for line in socat(self.sock, "show stat").splitlines()[1:]]
            return {r[1]: int(r[7]) for r in rows if r[0] == "p" and r[1] in ("a", "b")}
        before = stot()
        for _ in range(6):
            self.assertEqual(echo(lb.port()), b"ping\n")
        after = stot()
        self.assertEqual(after["a"], before["a"], "no new connection to the draining backend")
        self.assertEqual(after["b"], before["b"] + 6)
        # The live connection on the draining backend carries a 2 MiB transfer to the end.
        blob = os.urandom(2 << 20)
        held.sendall(blob)
        self.assertEqual(recv_exactly(held, len(blob)), blob)
        held.close()
        socat(self.sock, "set server p/a state ready")
        self.assertNotIn("DRAIN", socat(self.sock, "show stat"))
        self.stop_ringlb(lb)

    def test_maint_and_weight(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        lb = self.ringlb(config(self.sock, [("a", a.address), ("b", b.address)],
                                health={"type": "tcp", "interval": "200ms", "timeout": "150ms"}))
        socat(self.sock, "set server p/a state maint")
        self.assertIn("MAINT", socat(self.sock, "show stat"))
        for _ in range(4):
            echo(lb.port())
        wait_for(lambda: b.echoed() == 4, what="all connections at b")
        self.assertEqual(a.echoed(), 0)
        socat(self.sock, "set server p/a state ready")
        socat(self.sock, "set server p/b weight 0")
        for _ in range(4):
            echo(lb.port())
        wait_for(lambda: a.echoed() == 4, what="all connections at a once b has weight 0")
        self.assertEqual(b.echoed(), 4)
        self.assertIn("No such server", socat(self.sock, "set server p/zz state drain"))
        self.assertIn("No such backend", socat(self.sock, "set server nope/a state drain"))
        self.stop_ringlb(lb)

    def test_maint_pauses_checks_and_slow_start_ramps_the_weight_back(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        text = config(self.sock, [("a", a.address), ("b", b.address)],
                      health={"type": "tcp", "interval": "100ms", "fast_interval": "100ms", "timeout": "80ms"})
        text = text.replace('name = "p"\n', 'name = "p"\nslow_start = "20s"\n', 1)
        text = text.replace('address = "' + a.address + '"', 'address = "' + a.address + '"\nweight = 32')
        lb = self.ringlb(text)

        def series():
            return parse_prometheus(self.get(lb, "/metrics")[2])
        wait_for(lambda: metric(series(), "ringlb_backend_checks_total", pool="p", backend="a") >= 2,
                 what="checks of a")
        socat(self.sock, "set server p/a state maint")
        time.sleep(0.3)  # a check in flight may still finish
        paused = metric(series(), "ringlb_backend_checks_total", pool="p", backend="a")
        time.sleep(0.6)
        self.assertEqual(metric(series(), "ringlb_backend_checks_total", pool="p", backend="a"), paused,
                         "no checks while in maintenance")
        self.assertGreater(metric(series(), "ringlb_backend_checks_total", pool="p", backend="b"), paused)
        self.assertEqual(metric(series(), "ringlb_backend_admin_state", pool="p", backend="a", state="maint"), 1)
        socat(self.sock, "set server p/a state ready")
        s = series()
        self.assertEqual(metric(s, "ringlb_backend_weight", pool="p", backend="a"), 32)
        # Back from maintenance: the weight ramps from 1/16 (2 of 32) over 20 s.
        self.assertLessEqual(metric(s, "ringlb_backend_effective_weight", pool="p", backend="a"), 4)
        self.assertGreaterEqual(metric(s, "ringlb_backend_effective_weight", pool="p", backend="a"), 2)
        wait_for(lambda: metric(series(), "ringlb_backend_checks_total", pool="p", backend="a") > paused,
                 what="checks to resume")
        self.stop_ringlb(lb)

    def terminating_lb(self):
        """ringlb terminating with the public test certificates, re-encrypting to one nginx."""
        d = test_pki()
        a = self.nginx("n1", cert="backend-1")
        text = config(self.sock, [], tls=True)
        text += f'[pool.tls]\nca_file = "{d}/internal-ca.pem"\n'
        text += f'[[pool.backend]]\nname = "n1"\naddress = "{a.address}"\ntls_name = "backend-1.internal.test"\n'
        return self.ringlb(text)

    def test_ssl_cert_set_commit_show(self):
        d = test_pki()
        lb = self.terminating_lb()
        target = f"{d}/default.full.pem"
        before = s_client_tls(lb.port(), ca=f"{d}/public-ca.pem")
        self.assertEqual(before.peer_cn, "default.example.test")
        listing = socat(self.sock, "show ssl cert")
        self.assertIn(target, listing)
        with open(f"{d}/wildcard-apps.full.pem") as f:
            pem = f.read()
        out = socat(self.sock, f"set ssl cert {target} <<\n{pem.strip()}\n")
        self.assertIn("Transaction created", out)
        self.assertIn(f"*{target}", socat(self.sock, "show ssl cert"))
        out = socat(self.sock, f"commit ssl cert {target}")
        self.assertIn("Success!", out)
        after = s_client_tls(lb.port(), ca=f"{d}/public-ca.pem")
        self.assertEqual(after.peer_cn, "*.apps.example.test")
        details = socat(self.sock, f"show ssl cert {target}")
        self.assertIn("apps.example.test", details)
        # A PEM without a certificate is refused, and nothing changes.
        self.assertRegex(socat(self.sock, f"set ssl cert {target} <<\nnot a pem\n"), r"(?i)error|unable|no certificate")
        self.assertEqual(s_client_tls(lb.port(), ca=f"{d}/public-ca.pem").peer_cn, "*.apps.example.test")
        self.stop_ringlb(lb)

    def test_relative_weight_that_overflows_is_bounded(self):
        # weight * N% used to be computed in a signed long: 3 * 3074457345618258603 overflows
        # (UBSan aborts; a release build stored a negative value as a uint32 weight).
        a = self.start(EchoBackend("a"))
        text = config(self.sock, [("a", a.address)]).replace('address = "' + a.address + '"',
                                                               'address = "' + a.address + '"\nweight = 3')
        lb = self.ringlb(text)
        self.assertEqual(socat(self.sock, "set server p/a weight 3074457345618258603%"), "\n")
        weight = metric(parse_prometheus(self.get(lb, "/metrics")[2]), "ringlb_backend_weight", pool="p", backend="a")
        self.assertEqual(weight, 256)
        self.assertEqual(echo(lb.port()), b"ping\n")
        self.stop_ringlb(lb)

    def test_sighup_forgets_certificates_committed_at_run_time(self):
        # A reload re-reads the files, so a certificate committed only in memory is no longer
        # served; `show ssl cert` must say so, and a later commit of another file must not
        # bring the forgotten one back.
        d = test_pki()
        lb = self.terminating_lb()
        target = f"{d}/default.full.pem"
        with open(f"{d}/wildcard-apps.full.pem") as f:
            pem = f.read()
        self.assertIn("Transaction created", socat(self.sock, f"set ssl cert {target} <<\n{pem.strip()}\n"))
        self.assertIn("Success!", socat(self.sock, f"commit ssl cert {target}"))
        self.assertEqual(s_client_tls(lb.port(), ca=f"{d}/public-ca.pem").peer_cn, "*.apps.example.test")
        os.kill(lb.proc.pid, signal.SIGHUP)
        wait_for(lambda: "applied: generation 3" in lb.output(), what="the SIGHUP reload")
        self.assertEqual(s_client_tls(lb.port(), ca=f"{d}/public-ca.pem").peer_cn, "default.example.test")
        self.assertNotIn("apps.example.test", socat(self.sock, f"show ssl cert {target}"))
        self.stop_ringlb(lb)

    def test_reload_command(self):
        a = self.start(EchoBackend("a"))
        lb = self.ringlb(config(self.sock, [("a", a.address)]))
        self.assertIn("Success=1", socat(self.sock, "reload"))
        with open(lb.config_path, "a") as f:
            f.write("\nbogus = 1\n")
        out = socat(self.sock, "reload")
        self.assertIn("Success=0", out)
        self.assertIn("unknown key \"bogus\"", out)
        self.assertEqual(echo(lb.port()), b"ping\n")
        self.stop_ringlb(lb)

    def test_prometheus_metrics_parse_and_match_the_traffic(self):
        a = self.start(EchoBackend("a"))
        b = self.start(EchoBackend("b"))
        lb = self.ringlb(config(self.sock, [("a", a.address), ("b", b.address)],
                                health={"type": "tcp", "interval": "200ms", "timeout": "150ms"}))
        sent = 0
        for i in range(20):
            payload = b"x" * (100 + i) + b"\n"
            self.assertEqual(echo(lb.port(), payload), payload)
            sent += len(payload)
        status, ctype, body = self.get(lb, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        wait_for(lambda: metric(parse_prometheus(self.get(lb, "/metrics")[2]), "ringlb_listener_connections",
                                listener="vip") == 0, what="connections to end")
        body = self.get(lb, "/metrics")[2]
        series = parse_prometheus(body)
        self.assertEqual(metric(series, "ringlb_listener_connections_total", listener="vip"), 20)
        self.assertEqual(metric(series, "ringlb_listener_received_bytes_total", listener="vip"), sent)
        self.assertEqual(metric(series, "ringlb_listener_sent_bytes_total", listener="vip"), sent)
        per_backend = [metric(series, "ringlb_backend_connections_total", pool="p", backend=n) for n in ("a", "b")]
        self.assertEqual(sum(per_backend), 20)
        self.assertTrue(all(n > 0 for n in per_backend), per_backend)  # round robin per worker
        self.assertEqual(sum(metric(series, "ringlb_backend_sent_bytes_total", pool="p", backend=n)
                             for n in ("a", "b")), sent)
        self.assertEqual(metric(series, "ringlb_route_connections_total", listener="vip", route="default"), 20)
        # Health state and check counters: the first checks run within a fast interval of start.
        wait_for(lambda: metric(parse_prometheus(self.get(lb, "/metrics")[2]), "ringlb_backend_checks_total",
                                pool="p", backend="a") > 0, what="a check of backend a")
        self.assertEqual(metric(parse_prometheus(self.get(lb, "/metrics")[2]), "ringlb_backend_up", pool="p",
                                backend="a"), 1)
        if PROMTOOL:
            r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        status, _, page = self.get(lb, "/")
        self.assertEqual(status, 200)
        self.assertRegex(page, r"\ba\s+127\.0\.0\.1:\d+\s+UP")
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.get(lb, "/nothing")
        self.assertEqual(e.exception.code, 404)
        self.stop_ringlb(lb)

    def test_json_access_log(self):
        a = self.start(EchoBackend("a"))
        lb = self.ringlb(config(self.sock, [("a", a.address)], extra_global='access_log_format = "json"'))
        self.assertEqual(echo(lb.port(), b"hello json\n"), b"hello json\n")
        log = self.stop_ringlb(lb)
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        self.assertEqual(len(records), 1, log)
        r = records[0]
        self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
        self.assertEqual((r["listener"], r["pool"], r["backend"], r["end"]), ("vip", "p", "a", "done"))
        self.assertEqual(r["bytes_in"], 11)
        self.assertEqual(r["bytes_out"], 11)
        self.assertIsInstance(r["duration_ms"], float)


if __name__ == "__main__":
    unittest.main()
