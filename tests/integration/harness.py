"""Integration-test harness: real processes on loopback, ports chosen by the kernel.

Starts the real ringlb binary (path from $RINGLB_BIN), real backends (openssl s_server,
nginx, small Python TCP servers where a test needs to see raw bytes) and real clients
(openssl s_client, curl). Every process it starts is stopped by PID in tearDown.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

RINGLB = os.environ.get("RINGLB_BIN", os.path.join(os.path.dirname(__file__), "../../build/app/ringlb"))
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_PKI_LOCK = threading.Lock()
_PKI_DIR = None


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def pki():
    """A test CA and EC P-256 server certificates, generated once per test process."""
    global _PKI_DIR
    with _PKI_LOCK:
        if _PKI_DIR:
            return _PKI_DIR
        d = tempfile.mkdtemp(prefix="ringlb-pki-")
        run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2", "-subj", "/CN=ringlb test CA"])
        names = ["alpha.test", "beta.test", "a.wild.test", "default.test", "other.test"]
        for name in names:
            run([OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}"])
            with open(f"{d}/{name}.ext", "w") as f:
                f.write(f"subjectAltName=DNS:{name}\n")
            run([OPENSSL, "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
                 "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "2", "-extfile", f"{d}/{name}.ext"])
        _PKI_DIR = d
        return d


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A child process with its output captured to a file."""

    def __init__(self, argv, cwd=None, name="proc", env=None):
        self.log_path = tempfile.mktemp(prefix=f"ringlb-{name}-", suffix=".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self.name = name

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class SServer(Process):
    """openssl s_server -WWW serving files from its own directory; /id names the backend."""

    def __init__(self, name, cert_name="alpha.test", extra=()):
        d = pki()
        self.root = tempfile.mkdtemp(prefix=f"ringlb-www-{name}-")
        with open(os.path.join(self.root, "id"), "w") as f:
            f.write(name)
        super().__init__([OPENSSL, "s_server", "-accept", "0", "-cert", f"{d}/{cert_name}.pem",
                          "-key", f"{d}/{cert_name}.key", "-WWW", *extra], cwd=self.root, name=f"s_server-{name}")
        m = wait_for(lambda: re.search(r"ACCEPT \S*:(\d+)", self.output()), what=f"s_server {name} to listen")
        self.port = int(m.group(1))
        self.address = f"127.0.0.1:{self.port}"


class RingLB(Process):
    """The real ringlb binary with a config written by the test."""

    def __init__(self, config_text, name="ringlb", workers=None, expect_ready=True):
        self.dir = tempfile.mkdtemp(prefix="ringlb-run-")
        self.config_path = os.path.join(self.dir, "ringlb.toml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.ready_path = os.path.join(self.dir, "ready")
        argv = [RINGLB, "run", "-c", self.config_path, "--ready-file", self.ready_path]
        argv += ["--workers", str(workers or 2)]
        super().__init__(argv, name=name)
        self.listeners = {}
        if expect_ready:
            wait_for(lambda: os.path.exists(self.ready_path) or not self.alive(), what="ringlb ready file")
            if not self.alive():
                raise AssertionError(f"ringlb exited early:\n{self.output()}")
            with open(self.ready_path) as f:
                for line in f:
                    _, lname, addr = line.split()
                    self.listeners.setdefault(lname, []).append(addr)

    def port(self, listener="vip", index=0):
        return int(self.listeners[listener][index].rsplit(":", 1)[1])


def curl(port, name, path="/id", extra=(), timeout=10):
    """GET https://name:port/path through 127.0.0.1, verifying against the test CA."""
    d = pki()
    r = subprocess.run([CURL, "-sS", "--max-time", str(timeout), "--cacert", f"{d}/ca.pem",
                        "--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}{path}", *extra],
                       capture_output=True)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def s_client(port, servername=None, args=(), stdin=b"", timeout=10):
    argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *args]
    if stdin:
        argv.append("-ign_eof")  # keep reading the reply after our request is sent
    if servername is None:
        argv.append("-noservername")
    else:
        argv += ["-servername", servername]
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def client_hello(server_name, alpn=None, tls12_only=False):
    """A real ClientHello produced by OpenSSL (Python's ssl module) for server_name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def echo_transfer(port, size, server_name="alpha.test"):
    """Sends a real ClientHello then `size` random bytes through 127.0.0.1:port, half-closes,
    and reads everything echoed back while still sending. Returns (bytes sent, bytes received,
    sent sha256, received sha256); hello included in both."""
    hello = client_hello(server_name)
    block = os.urandom(1 << 20)
    sent = hashlib.sha256(hello)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)

    def writer():
        s.sendall(hello)
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
    return size + len(hello), total, sent.hexdigest(), got.hexdigest()


class RawBackend:
    """A plain TCP (or unix) server that records what it receives. `behaviour` decides replies:
    'echo' echoes bytes as they arrive; 'digest_on_eof' reads to EOF then replies with the
    sha256 and byte count of what it got, then closes; 'flood' answers the first bytes with up
    to 64 MiB of data (for clients that never read), bounded by a 60 s deadline."""

    def __init__(self, behaviour="echo", unix_path=None):
        self.behaviour = behaviour
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = f"unix:{unix_path}"
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.sock.listen(1024)
        self.received = []  # bytes per connection, in accept order
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                index = len(self.received)
                self.received.append(b"")
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn, index):
        h = hashlib.sha256()
        total = 0
        chunks = []
        try:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    break
                total += len(data)
                h.update(data)
                if self.behaviour == "flood":
                    block = b"x" * 65536
                    deadline = time.monotonic() + 60
                    conn.settimeout(1.0)
                    sent = 0
                    while sent < (64 << 20) and time.monotonic() < deadline and not self.stopping:
                        try:
                            sent += conn.send(block)
                        except socket.timeout:
                            continue
                    break
                if total <= 1 << 20:
                    chunks.append(data)
                if self.behaviour == "echo":
                    conn.sendall(data)
            with self.lock:
                self.received[index] = b"".join(chunks)
            if self.behaviour == "digest_on_eof":
                conn.sendall(f"{h.hexdigest()} {total}\n".encode())
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass


class IntegrationTest(unittest.TestCase):
    """Base class: tracks processes and servers and stops them by PID after each test."""

    def setUp(self):
        self._procs = []
        self._servers = []

    def tearDown(self):
        for s in self._servers:
            s.stop()
        for p in reversed(self._procs):
            p.stop(signal.SIGKILL if isinstance(p, SServer) else signal.SIGTERM)

    def start(self, proc):
        self._procs.append(proc)
        return proc

    def server(self, srv):
        self._servers.append(srv)
        return srv

    def ringlb(self, config_text, **kw):
        lb = RingLB(config_text, **kw)
        self._procs.append(lb)
        return lb

    def stop_ringlb(self, lb):
        rc = lb.stop()
        self.assertEqual(rc, 0, f"ringlb exit code {rc}; log:\n{lb.output()[-4000:]}")
        return lb.output()
