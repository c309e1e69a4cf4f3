"""kTLS (kernel TLS records after an OpenSSL handshake): the start-up probe line, ktls = "on"
on a kernel without the TLS ULP, the user-space fallback, and (only where the kernel has the
TLS ULP) terminated + re-encrypted transfers whose records the kernel makes.
Real ringlb, nginx TLS backends, curl; ports chosen by the kernel."""
import hashlib
import os
import re
import subprocess
import tempfile

from harness import (CURL, RINGLB, IntegrationTest, access_lines, internal_tls, pool_toml, terminate_config,
                     test_pki, wait_for)

SNI = "www.example.test"
NO_ULP = "kernel has no TLS ULP"


def curl_get(port, path="/id", timeout=60):
    r = subprocess.run([CURL, "-sS", "--max-time", str(timeout), "--cacert", f"{test_pki()}/public-ca.pem",
                        "--resolve", f"{SNI}:{port}:127.0.0.1", f"https://{SNI}:{port}{path}"], capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def ktls_line(log):
    m = re.search(r"kTLS: .*", log)
    return m.group(0) if m else None


def crypto_table_parsed():
    """True once the configuration loader knows [crypto] (parsed by the crypto offload work)."""
    d = tempfile.mkdtemp(prefix="ringlb-ktls-")
    path = os.path.join(d, "probe.toml")
    with open(path, "w") as f:
        f.write('[crypto]\nktls = "auto"\n')
    r = subprocess.run([RINGLB, "check", "-c", path], capture_output=True, text=True)
    return 'unknown key "crypto"' not in r.stdout + r.stderr


class KtlsTest(IntegrationTest):
    def reencrypt_vip(self, ng, crypto=None, backend_tls=None):
        pool = pool_toml("p", [(ng.id_name, ng.address, "backend-1.internal.test")],
                         tls=internal_tls(**(backend_tls or {})))
        text = terminate_config(pool)
        if crypto is not None:
            text = f"[crypto]\nktls = \"{crypto}\"\n\n" + text
        return self.ringlb(text)

    def kernel_supports_ktls(self, log):
        line = ktls_line(log)
        self.assertIsNotNone(line, log)
        return not line.startswith("kTLS: unavailable")

    def test_startup_log_states_whether_ktls_is_available_and_why_not(self):
        ng = self.nginx("b1")
        lb = self.reencrypt_vip(ng)
        line = wait_for(lambda: ktls_line(lb.output()), what="the kTLS line")
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            ulps = f.read().split()  # read after the probe, which may have autoloaded the module
        if "tls" in ulps:
            self.assertRegex(line, r"^kTLS: TX(\+RX)?, ", line)
        else:
            # The reason is the kernel's own answer, not a guess: this must not pass silently.
            self.assertIn('kTLS: unavailable (kernel has no TLS ULP: setsockopt(TCP_ULP, "tls"): ', line)
            self.assertTrue(line.endswith(")"), line)

    def test_without_kernel_support_connections_fall_back_to_user_space_records(self):
        ng = self.nginx("b1", blobs={"blob": 4 << 20})
        lb = self.reencrypt_vip(ng)
        rc, body, err = curl_get(lb.port(), "/blob")
        self.assertEqual(rc, 0, err)
        self.assertEqual(hashlib.sha256(body).hexdigest(), ng.blob_sha256["blob"])
        log = self.stop_ringlb(lb)
        if self.kernel_supports_ktls(log):
            self.skipTest("this kernel has the TLS ULP: the fallback is not what runs")
        lines = [a for a in access_lines(log) if a.get("backend") == "b1"]
        self.assertEqual(len(lines), 1, log)
        self.assertEqual(lines[0].get("ktls"), "off(kernel)", lines[0])
        self.assertEqual(lines[0].get("backend_ktls"), "off(kernel)", lines[0])

    def test_ktls_on_refuses_to_start_without_kernel_support(self):
        if not crypto_table_parsed():
            self.skipTest("needs [crypto] ktls parsing")
        ng = self.nginx("b1")
        pool = pool_toml("p", [(ng.id_name, ng.address, "backend-1.internal.test")], tls=internal_tls())
        lb = self.ringlb('[crypto]\nktls = "on"\n\n' + terminate_config(pool), expect_ready=False)
        wait_for(lambda: not lb.alive() or os.path.exists(lb.ready_path), what="ringlb to start or stop")
        log = lb.output()
        if self.kernel_supports_ktls(log):
            self.assertTrue(lb.alive(), log)
            return
        self.assertEqual(lb.proc.wait(10), 1, log)
        self.assertIn('ktls = "on" but kTLS: unavailable (kernel has no TLS ULP', log)
        self.assertFalse(os.path.exists(lb.ready_path))

    # ---- with the TLS ULP only ----

    def require_kernel_ktls(self, lb):
        line = wait_for(lambda: ktls_line(lb.output()), what="the kTLS line")
        if line.startswith("kTLS: unavailable"):
            self.skipTest(line[len("kTLS: unavailable ("):-1] if NO_ULP in line else line)

    def test_reencrypted_download_runs_with_kernel_records_both_sides(self):
        # TLS 1.2 to the backend: a TLS 1.3 backend's tickets come after the switch (off(tickets)).
        ng = self.nginx("b1", blobs={"blob": 64 << 20})
        lb = self.reencrypt_vip(ng, backend_tls={"max_version": "1.2"})
        self.require_kernel_ktls(lb)
        rc, body, err = curl_get(lb.port(), "/blob")
        self.assertEqual(rc, 0, err)
        self.assertEqual(hashlib.sha256(body).hexdigest(), ng.blob_sha256["blob"])
        log = self.stop_ringlb(lb)
        lines = [a for a in access_lines(log) if a.get("backend") == "b1"]
        self.assertEqual(lines[0].get("ktls"), "tx,rx", lines[0])
        self.assertEqual(lines[0].get("backend_ktls"), "tx,rx", lines[0])

    def test_tls13_backend_keeps_user_space_records_because_of_its_tickets(self):
        ng = self.nginx("b1")
        lb = self.reencrypt_vip(ng)
        self.require_kernel_ktls(lb)
        rc, _, err = curl_get(lb.port())
        self.assertEqual(rc, 0, err)
        log = self.stop_ringlb(lb)
        lines = [a for a in access_lines(log) if a.get("backend") == "b1"]
        self.assertEqual(lines[0].get("backend_ktls"), "off(tickets)", lines[0])
        self.assertEqual(lines[0].get("ktls"), "off(other-side)", lines[0])

    def test_ktls_off_keeps_user_space_records_on_a_capable_kernel(self):
        if not crypto_table_parsed():
            self.skipTest("needs [crypto] ktls parsing")
        ng = self.nginx("b1")
        lb = self.reencrypt_vip(ng, crypto="off")
        self.require_kernel_ktls(lb)
        rc, _, err = curl_get(lb.port())
        self.assertEqual(rc, 0, err)
        log = self.stop_ringlb(lb)
        lines = [a for a in access_lines(log) if a.get("backend") == "b1"]
        self.assertEqual(lines[0].get("ktls"), "off(config)", lines[0])
