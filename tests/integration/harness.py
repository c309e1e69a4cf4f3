"""Integration-test harness: real processes on loopback, ports chosen by the kernel.

Starts the real ringlb binary (path from $RINGLB_BIN), real backends (openssl s_server,
nginx, small Python TCP servers where a test needs to see raw bytes) and real clients
(openssl s_client, curl). Every process it starts is stopped by PID in tearDown.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
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

    def __init__(self, config_text, name="ringlb", workers=None, expect_ready=True, dir_mode=None):
        self.dir = tempfile.mkdtemp(prefix="ringlb-run-")
        if dir_mode is not None:  # e.g. 0o777 when ringlb drops privileges before the ready file
            os.chmod(self.dir, dir_mode)
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
                self.log.close()
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

    def nginx(self, *args, **kw):
        """Starts an NginxTls backend (defined below) that tearDown stops."""
        return self.start(NginxTls(*args, **kw))

    def ringlb(self, config_text, **kw):
        lb = RingLB(config_text, **kw)
        self._procs.append(lb)
        return lb

    def stop_ringlb(self, lb):
        rc = lb.stop()
        self.assertEqual(rc, 0, f"ringlb exit code {rc}; log:\n{lb.output()[-4000:]}")
        return lb.output()


# ---------------------------------------------------------------------------------------------
# TLS termination / re-encryption helpers: the full test PKI, nginx TLS backends, sslscan, and
# an s_client wrapper with parsed results.

PKI_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../pki/make-test-pki.sh")
SSLSCAN = shutil.which("sslscan") or "/usr/bin/sslscan"
EXAMPLE_PKI_PREFIX = "/etc/ringlb/pki/"  # where conf/ examples keep the PKI files

_TEST_PKI_LOCK = threading.Lock()
_TEST_PKI_DIR = None


def test_pki():
    """The PKI of tests/pki/make-test-pki.sh (file list at the top of the script), made once
    per test process in a temp dir; returns its absolute path. $RINGLB_TEST_PKI names a
    directory to use (and fill, if it has no .done) instead, to reuse one PKI across runs."""
    global _TEST_PKI_DIR
    with _TEST_PKI_LOCK:
        if _TEST_PKI_DIR:
            return _TEST_PKI_DIR
        d = os.environ.get("RINGLB_TEST_PKI")
        if not d:
            d = os.path.join(tempfile.mkdtemp(prefix="ringlb-testpki-"), "pki")
        d = os.path.abspath(d)
        r = subprocess.run(["bash", PKI_SCRIPT, d], capture_output=True, timeout=120)
        if r.returncode != 0 or not os.path.exists(os.path.join(d, ".done")):
            raise AssertionError(f"make-test-pki.sh failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
        _TEST_PKI_DIR = d
        return d


test_pki.__test__ = False  # a helper, not a test, should pytest ever collect the test modules


def with_test_pki(text):
    """Config text with the example PKI paths (/etc/ringlb/pki/...) pointing at test_pki()."""
    return text.replace(EXAMPLE_PKI_PREFIX, test_pki() + "/")


def _pki_pair(cert, key=None):
    """(cert path, key path): a bare name like "backend-1" means test_pki()/backend-1.pem/.key."""
    if os.sep not in cert and not cert.endswith(".pem"):
        d = test_pki()
        return f"{d}/{cert}.pem", key or f"{d}/{cert}.key"
    if key is None:
        raise ValueError("key path needed with an explicit certificate path")
    return cert, key


def _listening_inodes(port):
    """Socket inodes in LISTEN state on TCP `port` (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _unused_port(host):
    # Racy by nature (the port is free only when we looked): callers retry on EADDRINUSE.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _write_blob(path, size):
    """`size` bytes of 1 MiB random blocks, each starting with its index (so a reordered or
    repeated block changes the digest); returns the sha256 hex digest."""
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        written, i = 0, 0
        while written < size:
            chunk = (bytes([i & 0xff]) + block[1:])[:size - written]
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
            i += 1
    return h.hexdigest()


def parse_id(body):
    """The key=value lines of a backend's /id reply as a dict."""
    out = {}
    for line in body.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v
    return out


class NginxTls(Process):
    """nginx (single foreground process) serving HTTPS on host:port, port chosen by the kernel.

    GET /id answers text/plain lines: id=<name>, client_dn, client_verify, protocol, cipher,
    reused ("r" or "."), sni, alpn, proxy_addr, proxy_port, remote_addr (parse with parse_id).
    Other paths are static files; `blobs` {"blob": size} creates /blob of that many bytes,
    digest in self.blob_sha256["blob"]. Every request is also logged, see access_log().

    cert/key: a test_pki() name ("backend-1") or explicit paths. verify_client: off | on |
    optional | optional_no_ca, with client_ca (a test_pki() name or a path) and crl (a
    test_pki() file name like "client-ca.crl" or a path). nginx finishes the TLS handshake even
    when client verification fails and answers HTTP 400 instead: "No required SSL certificate
    was sent" (on, no certificate) or "The SSL certificate error" (a bad one, e.g. revoked:
    reason in errors()). optional_no_ca serves /id with client_verify=FAILED:... only for an
    unknown issuer; a revoked or expired certificate still gets the 400.
    proxy_protocol: a PROXY v1 or v2 header is required before the TLS bytes.
    http2: offer h2 by ALPN (nginx 1.22 fails a handshake whose ALPN list has nothing it
    speaks, e.g. only "h2" when http2 is off)."""

    def __init__(self, name, cert="backend-1", key=None, verify_client="off", client_ca=None, crl=None,
                 proxy_protocol=False, http2=False, protocols="TLSv1.2 TLSv1.3", ciphers=None,
                 session_cache=True, session_tickets=True, blobs=None, host="127.0.0.1", extra_server="",
                 start_attempts=5, worker_connections=1024):
        self.worker_connections = worker_connections
        self.id_name = name
        self.host = host
        self.dir = tempfile.mkdtemp(prefix=f"ringlb-nginx-{name}-")
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, "tmp", sub))
        self.error_log_path = os.path.join(self.dir, "error.log")
        self.access_log_path = os.path.join(self.dir, "access.log")
        self.blob_sha256 = {name_: _write_blob(os.path.join(self.www, name_), size)
                            for name_, size in (blobs or {}).items()}
        cert_path, key_path = _pki_pair(cert, key)
        ssl_lines = [f"ssl_certificate {cert_path};", f"ssl_certificate_key {key_path};",
                     f"ssl_protocols {protocols};",
                     f"ssl_session_tickets {'on' if session_tickets else 'off'};",
                     f"ssl_session_cache {'shared:ringlb:1m' if session_cache else 'off'};"]
        if ciphers:
            ssl_lines.append(f"ssl_ciphers {ciphers};")
        if verify_client != "off":
            if client_ca is None:
                raise ValueError("verify_client needs client_ca")
            ca_path = client_ca if os.sep in client_ca else f"{test_pki()}/{client_ca}.pem"
            ssl_lines += [f"ssl_verify_client {verify_client};", f"ssl_client_certificate {ca_path};",
                          "ssl_verify_depth 3;"]
            if crl:
                ssl_lines.append(f"ssl_crl {crl if os.sep in crl else f'{test_pki()}/{crl}'};")
        self._ssl = "\n    ".join(ssl_lines)
        self._listen_flags = " ssl" + (" http2" if http2 else "") + (" proxy_protocol" if proxy_protocol else "")
        self._extra_server = extra_server
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        for _ in range(start_attempts):
            if self._start(_unused_port(host)):
                return
        raise AssertionError(f"nginx {name}: no free port after {start_attempts} attempts:\n{self.errors()}")

    def _config(self, port):
        d = self.dir
        listen = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        body = "\\n".join([
            f"id={self.id_name}", "client_dn=$ssl_client_s_dn", "client_verify=$ssl_client_verify",
            "protocol=$ssl_protocol", "cipher=$ssl_cipher", "reused=$ssl_session_reused",
            "sni=$ssl_server_name", "alpn=$ssl_alpn_protocol", "proxy_addr=$proxy_protocol_addr",
            "proxy_port=$proxy_protocol_port", "remote_addr=$remote_addr"]) + "\\n"
        return f"""# written by harness.NginxTls
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {self.error_log_path} info;
worker_rlimit_nofile {self.worker_connections * 2 + 64};
events {{ worker_connections {self.worker_connections}; }}
http {{
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  default_type application/octet-stream;
  log_format ringlb 'remote=$remote_addr proxy=$proxy_protocol_addr protocol=$ssl_protocol '
                    'reused=$ssl_session_reused sni=$ssl_server_name alpn=$ssl_alpn_protocol '
                    'verify=$ssl_client_verify status=$status bytes=$bytes_sent uri=$request_uri '
                    'client_dn="$ssl_client_s_dn"';
  access_log {self.access_log_path} ringlb;
  server {{
    listen {listen}{self._listen_flags};
    server_name _;
    {self._ssl}
    root {self.www};
    location = /id {{
      default_type text/plain;
      return 200 "{body}";
    }}
    {self._extra_server}
  }}
}}
"""

    def _start(self, port):
        """Starts nginx on `port`; False if the port was taken meanwhile (nginx then retries
        bind() for about 2.5 s before giving up)."""
        with open(self.conf_path, "w") as f:
            f.write(self._config(port))
        if os.path.exists(self.error_log_path):
            os.truncate(self.error_log_path, 0)
        super().__init__([NGINX, "-p", self.dir, "-c", self.conf_path, "-e", self.error_log_path],
                         name=f"nginx-{self.id_name}")
        pid = self.proc.pid
        wait_for(lambda: not self.alive() or (_listening_inodes(port) & _socket_inodes(pid)),
                 timeout=15, what=f"nginx {self.id_name} to listen on {port}")
        if self.alive():
            self.port = port
            self.address = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
            return True
        self.log.close()
        if "Address already in use" in self.errors():
            return False
        raise AssertionError(f"nginx {self.id_name} exited ({self.proc.returncode}):\n{self.output()}\n{self.errors()}")

    def errors(self):
        try:
            with open(self.error_log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def access_log(self):
        """The access log lines so far (one per request; key=value fields)."""
        try:
            with open(self.access_log_path, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def stop(self, sig=signal.SIGTERM, timeout=10):
        rc = super().stop(sig, timeout)
        for name_ in self.blob_sha256:  # large files: do not leave them in /tmp
            try:
                os.unlink(os.path.join(self.www, name_))
            except OSError:
                pass
        return rc


def _host_port(target):
    if isinstance(target, int):
        return f"127.0.0.1:{target}"
    return target


def sslscan(host_port, sni=None, timeout=120, extra=()):
    """Runs sslscan (Debian 12: 2.0.7) against host_port ("127.0.0.1:443", "[::1]:443" or a port
    number on 127.0.0.1) and returns the parsed XML report:
      protocols:     {"SSLv2": bool, "SSLv3": bool, "TLSv1.0": bool, ..., "TLSv1.3": bool}
      ciphers:       [{"protocol": "TLSv1.3", "name": "TLS_AES_128_GCM_SHA256", "bits": 128,
                       "status": "preferred" | "accepted", "id": "0x1301", "strength", "curve"}]
      groups:        [{"protocol", "name", "id", "bits"}]  (key exchange groups, as sslscan probes them)
      renegotiation: {"supported": bool, "secure": bool} or None if not reported. Unreliable on
                     a TLS 1.2+ server: sslscan 2.0.7 reports supported=False for an OpenSSL
                     s_server that does allow secure renegotiation unless TLS 1.0 is enabled.
      compression:   {"supported": bool} or None (this build usually does not report it)
      fallback_scsv: bool or None; heartbleed: {"TLSv1.2": vulnerable bool, ...}
      certificates:  [{"subject", "altnames", "issuer", "signature_algorithm", "pk_type",
                       "pk_bits", "self_signed", "expired"}]
      sni, returncode, raw (the XML text).
    Raises AssertionError if sslscan could not scan (e.g. connection refused)."""
    import xml.etree.ElementTree as ET

    target = _host_port(host_port)
    argv = [SSLSCAN, "--no-colour", "--xml=-", "--timeout=5", *extra]
    if sni:
        argv.append(f"--sni-name={sni}")
    argv.append(target)
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout.decode(errors="replace"))
    start = out.find("<?xml")
    if start < 0:
        start = out.find("<document")
    if start < 0:
        raise AssertionError(f"sslscan printed no XML (rc {r.returncode}):\n{out}\n{r.stderr.decode(errors='replace')}")
    xml_text = out[start:out.rfind("</document>") + len("</document>")]
    try:
        doc = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise AssertionError(f"sslscan XML unparseable ({e}):\n{xml_text}") from e
    err = doc.find("error")
    test = doc.find("ssltest")
    if test is None:
        raise AssertionError(f"sslscan could not scan {target}: {err.text if err is not None else xml_text}")

    def flag(value):
        return str(value).strip().lower() in ("1", "true", "yes")

    def as_int(value):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    result = {"protocols": {}, "ciphers": [], "groups": [], "renegotiation": None, "compression": None,
              "fallback_scsv": None, "heartbleed": {}, "certificates": [], "sni": test.get("sniname"),
              "returncode": r.returncode, "raw": xml_text}
    for p in test.iter("protocol"):
        kind, version = p.get("type", ""), p.get("version", "")
        label = f"SSLv{version}" if kind == "ssl" else f"TLSv{version}"
        result["protocols"][label] = flag(p.get("enabled"))
    for c in test.iter("cipher"):
        result["ciphers"].append({"protocol": c.get("sslversion"), "name": c.get("cipher"),
                                  "bits": as_int(c.get("bits")), "status": c.get("status"), "id": c.get("id"),
                                  "strength": c.get("strength"), "curve": c.get("curve")})
    for g in test.iter("group"):
        result["groups"].append({"protocol": g.get("sslversion"), "name": g.get("name"), "id": g.get("id"),
                                 "bits": as_int(g.get("bits"))})
    reneg = test.find("renegotiation")
    if reneg is not None:
        result["renegotiation"] = {"supported": flag(reneg.get("supported")), "secure": flag(reneg.get("secure"))}
    comp = test.find("compression")
    if comp is not None:
        result["compression"] = {"supported": flag(comp.get("supported"))}
    fallback = test.find("fallback")
    if fallback is not None:
        result["fallback_scsv"] = flag(fallback.get("supported"))
    for hb in test.iter("heartbleed"):
        result["heartbleed"][hb.get("sslversion")] = flag(hb.get("vulnerable"))
    for cert in test.iter("certificate"):
        pk = cert.find("pk")

        def text(tag, cert=cert):
            e = cert.find(tag)
            return e.text.strip() if e is not None and e.text else None

        result["certificates"].append({
            "subject": text("subject"), "altnames": text("altnames"), "issuer": text("issuer"),
            "signature_algorithm": text("signature-algorithm"),
            "pk_type": pk.get("type") if pk is not None else None,
            "pk_bits": as_int(pk.get("bits")) if pk is not None else None,
            "self_signed": flag(text("self-signed")), "expired": flag(text("expired"))})
    return result


def accepted_ciphers(scan, protocol):
    """Cipher names sslscan found accepted (or preferred) for `protocol` ("TLSv1.2")."""
    return [c["name"] for c in scan["ciphers"] if c["protocol"] == protocol]


class SClientResult:
    """What `openssl s_client` printed, with the usual facts pulled out. `ok`: a cipher was
    negotiated and no alert came from the server; it says nothing about our verification of
    the server (see verify_code)."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr
        # "New, TLSv1.0, Cipher is X": the version there is the cipher's (SSL_CIPHER_get_version),
        # not the protocol; the protocol is the SSL-Session block's "Protocol  :" line.
        m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", stdout, re.M)
        self.session = m.group(1) if m else None          # "New" | "Reused" | None
        self.cipher = m.group(3) if m and m.group(3) != "(NONE)" else None
        cipher_version = m.group(2) if m else None
        # s_client prints the SSL-Session block at handshake time only up to TLS 1.2; for 1.3 it
        # comes with each ticket, if any. A TLS 1.3 cipher suite implies TLS 1.3.
        m = re.search(r"^\s*Protocol\s*:\s*(\S+)", stdout, re.M)
        if not self.cipher:
            self.protocol = None
        elif m:
            self.protocol = m.group(1)                     # "TLSv1.2"
        else:
            self.protocol = "TLSv1.3" if cipher_version == "TLSv1.3" else None
        m = re.search(r"^subject=(.*)$", stdout, re.M)
        self.peer_subject = m.group(1).strip() if m else None  # "CN = www.example.test"
        m = re.search(r"(?:^|[,/]\s*)CN\s*=\s*([^,/]+)", self.peer_subject or "")
        self.peer_cn = m.group(1).strip() if m else None
        m = re.search(r"^issuer=(.*)$", stdout, re.M)
        self.peer_issuer = m.group(1).strip() if m else None
        m = re.search(r"Verify return code: (\d+) \(([^)]*)\)", stdout)
        self.verify_code = int(m.group(1)) if m else None
        self.verify_message = m.group(2) if m else None
        m = re.search(r"^ALPN protocol: (\S+)", stdout, re.M)
        self.alpn = m.group(1) if m else None
        m = re.search(r"^Server Temp Key: ([^,\n]+)", stdout, re.M)
        self.group = m.group(1).strip() if m else None     # "X25519", "ECDH, prime256v1" -> "ECDH"
        m = re.search(r"^Peer signature type: (\S+)", stdout, re.M)
        self.peer_signature_type = m.group(1) if m else None  # "ECDSA", "RSA-PSS"
        m = re.search(r"alert ([a-z ]+?)(?::|$)", stderr, re.M)
        self.alert = m.group(1).strip() if m else None      # "protocol version", "handshake failure"
        m = re.search(r"SSL alert number (\d+)", stderr)
        self.alert_number = int(m.group(1)) if m else None
        # A TLS 1.3 client finishes its handshake before the server has checked the client's
        # certificate: a rejection arrives afterwards as an alert ("certificate required",
        # "unknown ca", ...), with the cipher already printed. So ok needs both.
        self.ok = self.cipher is not None and self.alert_number is None
        self.reused = self.session == "Reused" and self.cipher is not None

    def http(self):
        """(status, headers dict with lower-case names, body) of the HTTP/1.x reply s_client
        printed, or None. The body is cut at Content-Length, so session-ticket blocks or
        "read R BLOCK"/"closed" lines that s_client prints around it do not leak in."""
        m = re.search(r"HTTP/1\.[01] (\d{3})[^\n]*\n", self.stdout)
        if not m:
            return None
        head, sep, rest = self.stdout[m.end():].partition("\r\n\r\n")
        if not sep:
            return int(m.group(1)), {}, ""
        headers = {}
        for line in head.split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = headers.get("content-length")
        body = rest[:int(length)] if length and length.isdigit() else rest.split("\n---\n")[0]
        return int(m.group(1)), headers, body

    def body(self):
        """The server's reply to what we sent: the HTTP body if the reply is HTTP, else the text
        after the handshake summary (s_client's own status lines removed)."""
        reply = self.http()
        if reply is not None:
            return reply[2]
        m = re.search(r"^Verify return code: .*\n---\n", self.stdout, re.M)
        tail = self.stdout[m.end():] if m else ""
        tail = re.sub(r"^---\nPost-Handshake New Session Ticket arrived:\n.*?\n---\n", "", tail, flags=re.M | re.S)
        return re.sub(r"^(read R BLOCK|closed|DONE)\n?", "", tail, flags=re.M)

    def __repr__(self):
        return (f"SClientResult(rc={self.returncode}, session={self.session}, protocol={self.protocol}, "
                f"cipher={self.cipher}, cn={self.peer_cn}, verify={self.verify_code}, alert={self.alert})")


_TLS_VERSION_FLAGS = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}


def s_client_tls(port, *, host="127.0.0.1", sni=None, ca=None, cert=None, key=None, sess_out=None, sess_in=None,
                 tls_version=None, sigalgs=None, ciphers=None, ciphersuites=None, groups=None, alpn=None,
                 verify_hostname=None, verify_return_error=False, stdin=b"", request=None, timeout=10, extra=()):
    """openssl s_client to host:port; returns an SClientResult.

    sni: server name to send (None: no SNI). ca: CA file to verify against (a test_pki() name
    like "public-ca" or a path). cert/key: client certificate (a test_pki() name like
    "client-alice", or paths). sess_out/sess_in: session file paths. tls_version: "1.0".."1.3",
    the only version offered; "1.0"/"1.1" add @SECLEVEL=0 to the cipher list because OpenSSL 3
    refuses to offer them otherwise (needed to see that a SERVER refuses TLS 1.1). sigalgs,
    ciphers (TLS 1.2), ciphersuites (1.3), groups: OpenSSL list syntax. alpn: list of protocol
    IDs. request: a path, sent as "GET <path> HTTP/1.0" (overrides stdin); with stdin or request
    s_client reads until the server closes (-ign_eof), which also collects TLS 1.3 tickets
    before sess_out is written."""
    argv = [OPENSSL, "s_client", "-connect", f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    argv += ["-servername", sni] if sni else ["-noservername"]
    if ca:
        argv += ["-CAfile", ca if os.sep in ca else f"{test_pki()}/{ca}.pem"]
    if cert:
        cert_path, key_path = _pki_pair(cert, key)
        argv += ["-cert", cert_path, "-key", key_path]
    if sess_out:
        argv += ["-sess_out", sess_out]
    if sess_in:
        argv += ["-sess_in", sess_in]
    if tls_version:
        argv.append(_TLS_VERSION_FLAGS[tls_version])
        if tls_version in ("1.0", "1.1") and "SECLEVEL" not in (ciphers or ""):
            ciphers = f"{ciphers or 'DEFAULT'}@SECLEVEL=0"
    if sigalgs:
        argv += ["-sigalgs", sigalgs]
    if ciphers:
        argv += ["-cipher", ciphers]
    if ciphersuites:
        argv += ["-ciphersuites", ciphersuites]
    if groups:
        argv += ["-groups", groups]
    if alpn:
        argv += ["-alpn", ",".join(alpn) if not isinstance(alpn, str) else alpn]
    if verify_hostname:
        argv += ["-verify_hostname", verify_hostname]
    if verify_return_error:
        argv.append("-verify_return_error")
    if request is not None:
        stdin = f"GET {request} HTTP/1.0\r\nHost: {sni or host}\r\n\r\n".encode()
    if stdin:
        argv.append("-ign_eof")
    argv += list(extra)
    # Line-buffered stdout (stdbuf, coreutils) keeps s_client's printed text and the raw reply
    # bytes it writes in the order they happened.
    stdbuf = shutil.which("stdbuf")
    run_argv = [stdbuf, "-oL", *argv] if stdbuf else argv
    r = subprocess.run(run_argv, input=stdin, capture_output=True, timeout=timeout)
    return SClientResult(argv, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))


# ---------------------------------------------------------------------------------------------
# Terminate-mode configs and an in-process TLS client (Python's ssl over memory BIOs, so a test
# can put a PROXY header or raw bytes before the handshake and stream both directions at once).

def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_keys(keys):
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in (keys or {}).items() if v is not None)


def public_tls(**overrides):
    """[listener.tls] keys serving the public certificates of test_pki(): www.example.test (ECDSA
    and RSA), *.apps.example.test, default.example.test as the default; overrides win."""
    d = test_pki()
    keys = {"certificates": [f"{d}/www-ecdsa.full.pem", f"{d}/www-rsa.full.pem", f"{d}/wildcard-apps.full.pem",
                             f"{d}/default.full.pem"],
            "default_certificate": f"{d}/default.full.pem"}
    keys.update(overrides)
    return keys


def internal_tls(**overrides):
    """[pool.tls] keys verifying backends against internal-ca; overrides win."""
    keys = {"ca_file": f"{test_pki()}/internal-ca.pem"}
    keys.update(overrides)
    return keys


def pool_toml(name, backends, tls=None, **keys):
    """A [[pool]] with `backends` [(name, address) or (name, address, tls_name)]; tls: dict of
    [pool.tls] keys or None for a plain-TCP pool; keys: other pool keys (proxy_protocol, ...)."""
    text = f"\n[[pool]]\nname = {toml_value(name)}\n" + toml_keys(keys)
    if tls is not None:
        text += "[pool.tls]\n" + toml_keys(tls)
    for backend in backends:
        text += f"[[pool.backend]]\nname = {toml_value(backend[0])}\naddress = {toml_value(backend[1])}\n"
        if len(backend) > 2:
            text += f"tls_name = {toml_value(backend[2])}\n"
    return text


def terminate_config(pools, tls=None, listener=None, global_keys=None, name="vip", default_pool=None):
    """One terminating listener `name` on 127.0.0.1:0 (tls: [listener.tls] keys, default
    public_tls(); listener: other listener keys) sending everything to `default_pool` (default:
    the first pool in `pools`, text from pool_toml)."""
    if default_pool is None:
        default_pool = re.search(r'name = "([^"]+)"', pools).group(1)
    g = {"log_level": "info"}
    g.update(global_keys or {})
    lkeys = {"name": name, "bind": ["127.0.0.1:0"], "mode": "terminate", "default_pool": default_pool}
    lkeys.update(listener or {})
    return ("[global]\n" + toml_keys(g) + "\n[[listener]]\n" + toml_keys(lkeys) + "[listener.tls]\n" +
            toml_keys(public_tls() if tls is None else tls) + pools)


class TlsClient:
    """A TLS client connection to 127.0.0.1:port made with Python's ssl module over memory BIOs.

    prefix: raw bytes sent before the ClientHello (a PROXY header). sni, ca (test_pki() name or
    path; None: no verification), cert (client certificate, a test_pki() name), version
    ("1.2"/"1.3" only). handshake() raises ssl.SSLError / OSError on failure."""

    def __init__(self, port, sni=None, ca="public-ca", cert=None, version=None, prefix=b"", timeout=20):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca:
            ctx.load_verify_locations(ca if os.sep in ca else f"{test_pki()}/{ca}.pem")
            ctx.check_hostname = sni is not None
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*_pki_pair(cert))
        if version:
            v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
            ctx.minimum_version = ctx.maximum_version = v
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=sni)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.deadline = time.monotonic() + timeout
        if prefix:
            self.sock.sendall(prefix)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        """Reads once from the socket into the TLS engine; False at EOF."""
        if time.monotonic() > self.deadline:
            raise socket.timeout("TlsClient deadline")
        data = self.sock.recv(1 << 18)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return self
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionError("EOF during the TLS handshake")

    def exchange(self, chunks=(), expect=None, close_notify=False, until=None):
        """Streams `chunks` (an iterable of bytes) while reading replies; then sends close_notify
        if asked, and reads until `expect` bytes came, or what came ends with `until` (neither:
        until the peer ends the stream). Returns the bytes received."""
        import selectors
        received = bytearray()
        chunks = iter(chunks)
        pending = b""
        sending = True
        self.sock.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        try:
            while (expect is None or len(received) < expect) and not (until and received.endswith(until)):
                if time.monotonic() > self.deadline:
                    raise socket.timeout(f"TlsClient deadline; {len(received)} bytes received")
                if sending and not pending:
                    chunk = next(chunks, None)
                    if chunk is None:
                        sending = False
                        if close_notify:
                            try:
                                self.obj.unwrap()
                            except ssl.SSLWantReadError:
                                pass
                        pending = self.outgoing.read()
                        sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0))
                    else:
                        self.obj.write(chunk)
                        pending = self.outgoing.read()
                for _, events in sel.select(1.0):
                    if events & selectors.EVENT_WRITE and pending:
                        try:
                            pending = pending[self.sock.send(pending):]
                        except BlockingIOError:
                            pass
                        if not pending and not sending:
                            sel.modify(self.sock, selectors.EVENT_READ)
                    if events & selectors.EVENT_READ:
                        try:
                            data = self.sock.recv(1 << 18)
                        except BlockingIOError:
                            continue
                        if not data:
                            return bytes(received)
                        self.incoming.write(data)
                        while True:
                            try:
                                got = self.obj.read(1 << 18)
                            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                                break
                            if not got:
                                break
                            received += got
            return bytes(received)
        finally:
            sel.close()
            self.sock.setblocking(True)
            self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))

    def close(self):
        self.sock.close()


def tls_get(port, path="/id", sni="www.example.test", **kw):
    """GET path over a TlsClient (HTTP/1.0, until the server closes); returns the reply bytes."""
    c = TlsClient(port, sni=sni, **kw).handshake()
    try:
        return c.exchange([f"GET {path} HTTP/1.0\r\nHost: {sni}\r\n\r\n".encode()])
    finally:
        c.close()


def http_body(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(errors="replace"), body


def access_lines(log):
    """ringlb's access-log lines as dicts of their key=value fields (quoted values unquoted)."""
    out = []
    for line in log.splitlines():
        if " access " not in line:
            continue
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        out.append({k: v[1:-1] if v.startswith('"') else v for k, v in fields.items()})
    return out


def recv_exactly(sock, n):
    """Reads until `n` bytes or EOF; returns what arrived."""
    got = b""
    while len(got) < n:
        data = sock.recv(65536)
        if not data:
            break
        got += data
    return got


def echo_once(port, payload=b"ping\n", timeout=5):
    """One plain connection to 127.0.0.1:port: sends `payload`, returns what comes back (as
    many bytes as were sent, or less at EOF)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        return recv_exactly(s, len(payload))


E2E_BINS = os.environ.get("E2E_SINK_BIN") and os.environ.get("E2E_TLS_LOADGEN_BIN")
E2E_SKIP = "needs the bench's e2e_sink and e2e_tls_loadgen (built with RINGLB_BUILD_BENCH)"


class E2eSink(Process):
    """The benchmark's C backend (bench/e2e/sink.cc) over TLS with test_pki()'s backend-1
    certificate; .address once listening."""

    def __init__(self):
        d = test_pki()
        ready = os.path.join(tempfile.mkdtemp(prefix="ringlb-sink-"), "ready")
        super().__init__([os.environ["E2E_SINK_BIN"], "--listen", "127.0.0.1:0", "--ready-file", ready,
                          "--tls-cert", f"{d}/backend-1.pem", "--tls-key", f"{d}/backend-1.key"], name="sink")

        def read_ready():
            if not os.path.exists(ready):
                return ""
            with open(ready) as f:
                return f.read().strip()
        self.address = wait_for(read_ready, what="e2e_sink ready").split()[-1]


def tls_loadgen(*args, timeout=60):
    """Runs the benchmark's TLS load generator; returns (exit status, its JSON result)."""
    r = subprocess.run([os.environ["E2E_TLS_LOADGEN_BIN"], *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    lines = r.stdout.strip().splitlines()
    return r.returncode, (json.loads(lines[-1]) if lines else {"stderr": r.stderr})


class EchoBackend(Process):
    """tests/integration/echo_backend.py as a process: echoes plain connections, answers HTTP
    health requests with `health_status` (or never, with hang_health). `port` = restart on it."""

    def __init__(self, name, port=0, health_status=200, hang_health=False):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_backend.py")
        argv = [sys.executable, script, "--port", str(port), "--name", name, "--health-status", str(health_status)]
        if hang_health:
            argv.append("--hang-health")
        super().__init__(argv, name=f"echo-{name}")
        m = wait_for(lambda: re.search(r"LISTENING (\d+)", self.output()) or (None if self.alive() else "dead"),
                     what=f"echo backend {name} to listen")
        if m == "dead":
            raise AssertionError(f"echo backend {name} exited:\n{self.output()}")
        self.port = int(m.group(1))
        self.address = f"127.0.0.1:{self.port}"

    def echoed(self):
        return self.output().count("ECHO ")


class EchoLoad:
    """Continuous short connections to 127.0.0.1:port through ringlb to echo backends, from
    `threads` threads: each connects, sends a unique line, expects it echoed, closes. Runs
    until stop() or `max_seconds`/`max_connections` (bounded); counts successes and keeps
    every failure with its reason (refused, reset, timeout, wrong bytes)."""

    def __init__(self, port, threads=4, max_seconds=120, max_connections=200000, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.ok = 0
        self.failures = []        # "Kind: message" per failed connection
        self.failure_starts = []  # time.monotonic() at which each failed connection started
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.max_connections = max_connections
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _one(self, payload):
        got = echo_once(self.port, payload, self.timeout)
        if got != payload:
            raise AssertionError(f"echo mismatch: sent {len(payload)} bytes, got {got[:60]!r}")

    def _loop(self, index):
        n = 0
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.ok + len(self.failures) >= self.max_connections:
                    return
            n += 1
            payload = f"thread {index} connection {n}\n".encode()
            started = time.monotonic()
            try:
                self._one(payload)
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure kind is recorded
                with self.lock:
                    self.failures.append(f"{type(e).__name__}: {e}")
                    self.failure_starts.append(started)

    def wait_ok(self, count, timeout=20):
        wait_for(lambda: self.ok >= count, timeout=timeout, what=f"{count} successful connections")

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)
        return self.ok, list(self.failures)
