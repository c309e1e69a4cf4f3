"""The command line: `ringlb check`, the shipped example config, and the demo script."""
import os
import subprocess
import tempfile
import unittest

from harness import RINGLB, with_test_pki

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


class CliTest(unittest.TestCase):
    def test_check_accepts_the_documented_example(self):
        # Its TLS health check reads the internal CA: use the test PKI's.
        with open(os.path.join(ROOT, "conf/internal-vip.toml")) as f:
            text = with_test_pki(f.read())
        path = os.path.join(tempfile.mkdtemp(prefix="ringlb-conf-"), "internal-vip.toml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([RINGLB, "check", "-c", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"internal-vip.toml: OK \(\d+ listeners, \d+ pools, \d+ backends\)")

    def test_check_reports_every_error_with_file_line_column(self):
        path = os.path.join(tempfile.mkdtemp(), "bad.toml")
        with open(path, "w") as f:
            f.write('[[listener]]\nname = "vip"\nbind = ["127.0.0.1:99999"]\ndefault_pool = "nope"\n\n'
                    '[[pool]]\nname = "p"\nconect_timeout = "1s"\n[[pool.backend]]\nname = "b"\naddress = "1.2.3.4:80"\n')
        r = subprocess.run([RINGLB, "check", "-c", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, rf"{path}:3:\d+: .*port")
        self.assertRegex(r.stderr, rf"{path}:4:\d+: .*nope")
        self.assertRegex(r.stderr, rf"{path}:8:\d+: unknown key \"conect_timeout\"")

    def test_run_with_a_bad_config_exits_without_serving(self):
        path = os.path.join(tempfile.mkdtemp(), "bad.toml")
        with open(path, "w") as f:
            f.write("[global]\nworkers = \"two\"\n")
        r = subprocess.run([RINGLB, "run", "-c", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:2:", r.stderr)

    def test_without_io_uring_it_exits_saying_why_and_how_to_fix(self):
        no_uring = os.environ.get("NO_URING_BIN", os.path.join(ROOT, "build/tests/integration/no_uring"))
        r = subprocess.run([no_uring, RINGLB, "run", "-c", os.path.join(ROOT, "conf/internal-vip.toml")],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("io_uring_setup failed: Operation not permitted", r.stderr)
        self.assertIn("seccomp", r.stderr)

    def test_demo_routes_by_sni(self):
        env = dict(os.environ, SKIP_BUILD="1", DEMO_SECONDS="0", DEMO_PORT="0", RINGLB_BIN=RINGLB)
        r = subprocess.run([os.path.join(ROOT, "scripts/demo.sh")], capture_output=True, text=True, timeout=120,
                           env=env, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alpha.demo.test -> served by alpha-1", r.stdout)
        self.assertIn("alpha.demo.test -> served by alpha-2", r.stdout)
        self.assertIn("beta.demo.test  -> served by beta-1", r.stdout)
        self.assertIn("unrecognized name", r.stdout)


if __name__ == "__main__":
    unittest.main()
