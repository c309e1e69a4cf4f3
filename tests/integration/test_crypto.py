"""[crypto]: the start-up report of which provider implements each algorithm and which CPU
extensions OpenSSL uses; refusal to start (exit status 2) with an engine the kernel cannot
serve (afalg without AF_ALG) or a provider that does not exist; a reload that introduces a
broken [crypto] fails and the old configuration keeps serving."""
import os
import signal
import unittest

from harness import (IntegrationTest, RawBackend, RingLB, TlsClient, pool_toml, terminate_config, toml_keys,
                     wait_for)

SNI = "www.example.test"


def crypto_table(**keys):
    return "\n[crypto]\n" + toml_keys(keys)


class CryptoTest(IntegrationTest):
    def config(self, backend, **crypto):
        text = terminate_config(pool_toml("p", [("echo", backend.address)]))
        return text + (crypto_table(**crypto) if crypto else "")

    def echo_through(self, lb, payload=b"ping\n"):
        c = TlsClient(lb.port(), sni=SNI).handshake()
        try:
            return c.exchange([payload], expect=len(payload))
        finally:
            c.close()

    def refused(self, text, env=None):
        """Starts ringlb expecting it to exit; returns (exit status, output)."""
        lb = self.ringlb(text, expect_ready=False)
        wait_for(lambda: not lb.alive(), timeout=20, what="ringlb to exit")
        self.assertFalse(os.path.exists(lb.ready_path), "ringlb wrote its ready file")
        return lb.proc.returncode, lb.output()

    def test_startup_log_names_the_implementation_of_each_algorithm(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(self.config(backend, providers=["default", "legacy"], property_query="?provider=default"))
        self.assertEqual(self.echo_through(lb), b"ping\n")
        out = lb.output()
        for line in ["crypto: providers: default, legacy", 'crypto: property query: "?provider=default"',
                     "crypto: engine: none", "crypto: AES-128-GCM: provider default",
                     "crypto: AES-256-GCM: provider default", "crypto: ChaCha20-Poly1305: provider default",
                     "crypto: ECDSA (P-256 signing): provider default", "crypto: RSA (2048 signing): provider default",
                     "crypto: X25519: provider default"]:
            self.assertIn(line, out)
        for ext in ["AES-NI", "VAES", "AVX-512", "PCLMULQDQ", "SHA-NI"]:
            self.assertRegex(out, rf"crypto: {ext}: (present, |absent)")

    def test_aes_ni_masked_by_openssl_ia32cap_is_reported_disabled(self):
        with open("/proc/cpuinfo") as f:
            has_aes = "aes" in f.read().split()
        if not has_aes:
            self.skipTest("this CPU has no AES-NI")
        backend = self.server(RawBackend("echo"))
        os.environ["OPENSSL_ia32cap"] = "~0x200000200000000"  # inherited by the child only
        try:
            lb = self.ringlb(self.config(backend))
        finally:
            del os.environ["OPENSSL_ia32cap"]
        self.assertEqual(self.echo_through(lb), b"ping\n")  # the non-AES-NI code paths still work
        self.assertIn("crypto: AES-NI: present, disabled by OPENSSL_ia32cap", lb.output())
        self.assertIn("crypto: PCLMULQDQ: present, disabled by OPENSSL_ia32cap", lb.output())

    def test_afalg_engine_without_kernel_af_alg_refuses_to_start(self):
        import socket
        try:
            socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).close()
            self.skipTest("this kernel has AF_ALG sockets")
        except OSError:
            pass
        backend = self.server(RawBackend("echo"))
        status, out = self.refused(self.config(backend, engine="afalg"))
        self.assertEqual(status, 2, out)
        self.assertIn('cannot load OpenSSL engine "afalg": the kernel\'s AF_ALG interface is not available', out)
        self.assertRegex(out, r"ringlb\.toml:\d+:\d+: \[crypto\]: ")
        self.assertIn("cannot start: [crypto] could not be applied", out)

    def test_bogus_provider_refuses_to_start_naming_it(self):
        backend = self.server(RawBackend("echo"))
        status, out = self.refused(self.config(backend, providers=["default", "no-such-provider"]))
        self.assertEqual(status, 2, out)
        self.assertIn('cannot load OpenSSL provider "no-such-provider"', out)

    def test_property_query_matching_nothing_refuses_to_start(self):
        backend = self.server(RawBackend("echo"))
        status, out = self.refused(self.config(backend, property_query="provider=nonexistent"))
        self.assertEqual(status, 2, out)
        self.assertIn('AES-128-GCM: no implementation in the loaded providers (default) matches property_query '
                      '"provider=nonexistent"', out)

    def test_reload_with_bogus_provider_fails_and_keeps_serving(self):
        backend = self.server(RawBackend("echo"))
        good = self.config(backend)
        lb = self.ringlb(good)
        self.assertEqual(self.echo_through(lb), b"ping\n")

        def reload(text):
            before = (lb.output().count(" applied: generation"), lb.output().count("failed: still serving"))
            tmp = lb.config_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, lb.config_path)
            os.kill(lb.proc.pid, signal.SIGHUP)
            wait_for(lambda: (lb.output().count(" applied: generation"), lb.output().count("failed: still serving"))
                     != before, what="reload to finish")

        reload(self.config(backend, providers=["default", "no-such-provider"]))
        out = lb.output()
        self.assertIn('[crypto]: cannot load OpenSSL provider "no-such-provider"', out)
        self.assertIn("failed: still serving the previous configuration", out)
        self.assertEqual(self.echo_through(lb), b"ping\n")

        # A valid change is accepted but only applies after a restart.
        reload(self.config(backend, providers=["default", "legacy"]))
        self.assertIn("[crypto] changed: applies only after a restart", lb.output())
        self.assertEqual(self.echo_through(lb), b"ping\n")


if __name__ == "__main__":
    unittest.main()
