"""ctest bench_crypto_short: runs `bench/crypto/run.py --short` against the built ringlb and
checks its outputs: the JSON is well-formed, every cell has its inputs and a status, measured
cells have positive numbers and the cipher they asked for, skipped cells say why, the Markdown
table lists every cell, and the PNGs are PNGs. Skips (does not fail) without matplotlib or
without the binaries.

Environment (set by tests/integration/CMakeLists.txt): RINGLB_BUILD_DIR, the build directory."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("RINGLB_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELL_KEYS = {"id", "lb", "workload", "key", "tls", "cipher", "backend", "mode", "status", "limit_per_s"}
MACHINE_KEYS = {"kernel", "cpu", "cpus"}
NOISE_KEYS = {"steal_s", "busy_s", "loadavg_before", "loadavg_after", "cell_noise_median", "cell_noise_max"}


class CryptoBenchShortTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if importlib.util.find_spec("matplotlib") is None:
            raise unittest.SkipTest("matplotlib is not installed (apt python3-matplotlib): no PNG plots")
        for path in ("app/ringlb", "bench/e2e_tls_loadgen", "bench/e2e_sink"):
            if not os.access(os.path.join(BUILD, path), os.X_OK):
                raise unittest.SkipTest(f"{path} is not built in {BUILD}")
        cls.tmp = tempfile.TemporaryDirectory(prefix="crypto-bench-test-")
        cls.out = cls.tmp.name
        # Bounded: --short is built to finish in under 2 minutes on 2 cores.
        cls.proc = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--short", "--out", cls.out,
                                   "--build-dir", BUILD], capture_output=True, text=True, timeout=170)
        if cls.proc.returncode != 0:
            print(cls.proc.stdout, cls.proc.stderr, sep="\n", file=sys.stderr)
        with open(os.path.join(cls.out, "results.json")) as f:
            cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_run_succeeded_and_printed_progress(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])
        n = len(self.results["cells"])
        self.assertIn(f"[  1/{n}]", self.proc.stderr)
        self.assertIn("ETA", self.proc.stderr)

    def test_json_has_machine_speed_and_noise(self):
        r = self.results
        self.assertEqual(r["mode"], "short")
        self.assertTrue(MACHINE_KEYS <= set(r["machine"]), r["machine"])
        self.assertTrue(NOISE_KEYS <= set(r["noise"]), r["noise"])
        for key in ("ecdsap256_sign_per_s", "rsa2048_sign_per_s", "x25519_per_s", "aes-128-gcm_bytes_per_s"):
            self.assertGreater(r["openssl_speed"]["default"][key], 0, key)
        self.assertGreater(r["openssl_speed"]["no-aesni"]["aes-128-gcm_bytes_per_s"], 0)

    def test_every_cell_has_its_inputs_and_a_status(self):
        cells = self.results["cells"]
        self.assertGreaterEqual(len(cells), 9)
        for c in cells:
            self.assertTrue(CELL_KEYS <= set(c), c)
            self.assertRegex(c["status"], r"^(ok|skipped: .+)$", c["id"])

    def test_measured_cells_have_positive_numbers_and_their_cipher(self):
        measured = [c for c in self.results["cells"] if c["status"] == "ok"]
        self.assertGreaterEqual(len(measured), 7)
        squash = lambda s: s.upper().replace("-", "").replace("_", "")
        for c in measured:
            self.assertEqual(c["errors"], 0, c["id"])
            self.assertGreater(c["lb_cpu_s"], 0, c["id"])
            self.assertTrue(all(n.startswith(f"TLSv{c['tls']} ") and squash(c["cipher"]) in squash(n)
                                for n in c["negotiated"]), (c["id"], c["negotiated"]))
            if c["workload"] == "bulk":
                for k in ("up_mb_per_s", "down_mb_per_s", "lb_cpu_s_per_gb"):
                    self.assertGreater(c[k], 0, (c["id"], k))
            else:
                self.assertGreater(c["handshakes_per_s"], 0, c["id"])
                self.assertGreater(c["lb_cpu_us_per_handshake"], 0, c["id"])
                hs = c["handshake_us"]
                self.assertTrue(0 < hs["p50"] <= hs["p90"] <= hs["p99"], (c["id"], hs))
            if c["mode"] != "passthrough" and c["limit_per_s"]:
                self.assertGreater(c["fraction_of_limit"], 0, c["id"])
                self.assertGreater(c["primitive_share_of_lb_cpu"], 0, c["id"])
        resumed = [c for c in measured if c["workload"] == "resume"]
        self.assertTrue(resumed and all(c["resumed_share"] > 0.9 for c in resumed), resumed)

    def test_unavailable_backends_are_skipped_with_a_reason(self):
        backends = self.results["backends"]
        for c in self.results["cells"]:
            if c["backend"] == "ktls" and backends["ktls"] != "available":
                self.assertEqual(c["status"], "skipped: kernel has no TLS ULP")
            if c["backend"] == "async-engine" and backends["async-engine"] != "available":
                self.assertEqual(c["status"], "skipped: async test engine not built")

    def test_markdown_table_lists_every_cell(self):
        with open(os.path.join(self.out, "results.md")) as f:
            md = f.read()
        self.assertIn("| LB | workload | key |", md)
        rows = [line for line in md.splitlines() if line.startswith("| ringlb |")]
        self.assertEqual(len(rows), len(self.results["cells"]))

    def test_plots_are_png_files(self):
        self.assertEqual(self.results["plots"]["files"], ["handshakes.png", "bulk.png"])
        for name in self.results["plots"]["files"]:
            with open(os.path.join(self.out, name), "rb") as f:
                head = f.read(8)
            self.assertEqual(head, PNG_SIGNATURE, name)
            self.assertGreater(os.path.getsize(os.path.join(self.out, name)), 5000, name)


if __name__ == "__main__":
    unittest.main()
