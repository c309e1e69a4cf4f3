"""TLS-termination phases of bench/e2e/run.py: test PKI, LB configurations, scenarios, and
the OpenSSL floors (openssl speed, bench_tls_handshake). Python stdlib only.

The PKI is made with the openssl CLI in the run's work directory:
  public CA (P-256) -> bench.example.test, one P-256 and one RSA-2048 leaf (what clients see)
  internal CA (P-256) -> backend.internal.test + IP 127.0.0.1 (what e2e_sink --tls-cert uses)
"""
import json
import os
import re
import subprocess

SNI = "bench.example.test"
BACKEND_NAME = "backend.internal.test"
ALLOCATORS = {  # LD_PRELOAD path per allocator (Debian packages libjemalloc2, libmimalloc2.0)
    "glibc": None,
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
}


def tls_scenarios():
    """name -> (loadgen argv, which certificate the LB presents). All phases use the same
    sizes for every LB; the client is e2e_tls_loadgen."""
    small = ["--concurrency", "32", "--request", "64", "--response", "64"]
    bulk = lambda d: ["bulk", "--concurrency", "4", "--direction", d, "--bytes-per-conn", "64M",
                      "--max-bytes", "64G"]
    return {"tls-full-ecdsa": (["handshake", *small], "ecdsa"),
            "tls-full-rsa": (["handshake", *small], "rsa"),
            "tls-resume": (["resume", *small], "ecdsa"),
            "tls-bulk-up": (bulk("up"), "ecdsa"),
            "tls-bulk-down": (bulk("down"), "ecdsa")}


# ---------------------------------------------------------------------- PKI

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(work, extra_leaves=None):
    """Creates the test PKI under WORK/pki; returns the paths run.py needs. EXTRA_LEAVES:
    more leaves for bench.example.test from the public CA, name -> openssl req key options
    (e.g. {"rsa4096": ["-newkey", "rsa:4096"]}), returned under their names."""
    d = os.path.join(work, "pki")
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    for ca in ("public-ca", "internal-ca"):
        _openssl("req", "-x509", *ec, "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                 "-subj", f"/CN=ringlb bench {ca}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign", cwd=d)

    def leaf(name, keyopts, ca, cn, san):
        _openssl("req", *keyopts, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
                 cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
                 cwd=d)
        # Certificate + key in one file, as HAProxy's "crt" and ringlb's "certificates" take it;
        # private, so that ringlb does not warn about a readable key.
        with open(os.open(os.path.join(d, f"{name}.pem"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            for part in (f"{name}.crt", f"{name}.key"):
                with open(os.path.join(d, part)) as f:
                    out.write(f.read())

    leaf("ecdsa", ec, "public-ca", SNI, f"DNS:{SNI}")
    leaf("rsa", ["-newkey", "rsa:2048"], "public-ca", SNI, f"DNS:{SNI}")
    leaf("backend", ec, "internal-ca", BACKEND_NAME, f"DNS:{BACKEND_NAME},IP:127.0.0.1")
    for name, keyopts in (extra_leaves or {}).items():
        leaf(name, keyopts, "public-ca", SNI, f"DNS:{SNI}")
    p = lambda n: os.path.join(d, n)
    return {"public_ca": p("public-ca.pem"), "internal_ca": p("internal-ca.pem"), "ecdsa": p("ecdsa.pem"),
            "rsa": p("rsa.pem"), "backend": p("backend.pem"), **{n: p(f"{n}.pem") for n in extra_leaves or {}}}


# ---------------------------------------------------------------------- LB configurations

# HAProxy as a TLS terminator that re-encrypts: one frontend per certificate type, one
# backend verified against the internal CA. HAProxy keeps the last backend TLS session per
# server and thread and resumes it (its default; no "no-ssl-reuse"). tune.ssl.cachesize
# (client-side session cache) is left at its default (20000).
HAPROXY_TLS_CONFIG = """\
global
    nbthread 1
    cpu-map 1/1 {cpu}
    maxconn 4000
    tune.bufsize 16384

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend tls-ecdsa
    bind {bind_ecdsa} ssl crt {ecdsa}
    maxconn 4000
    default_backend b

frontend tls-rsa
    bind {bind_rsa} ssl crt {rsa}
    maxconn 4000
    default_backend b

backend b
    server b1 {backend} ssl verify required ca-file {ca} verifyhost {name}
"""

# ringlb's terminate mode (keys as in conf/public-vip.toml). No ticket_key_file: the merged
# parser rejects "" for a path, and without one ringlb makes its own ticket key at start-up,
# as HAProxy does without tls-ticket-keys.
RINGLB_TLS_CONFIG = """\
[global]
workers = 1
access_log = false
log_level = "warn"
drain_timeout = "1s"
{extra}
[[listener]]
name = "tls-ecdsa"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "p"

[listener.tls]
certificates = ["{ecdsa}"]
alpn = []
session_tickets = true
session_cache_size = 20000
policy = "intermediate"

[[listener]]
name = "tls-rsa"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "p"

[listener.tls]
certificates = ["{rsa}"]
alpn = []
session_tickets = true
session_cache_size = 20000
policy = "intermediate"

[[pool]]
name = "p"
algorithm = "round_robin"

[pool.tls]
ca_file = "{ca}"
verify = true
verify_name = "{name}"
session_reuse = true

[[pool.backend]]
name = "b1"
address = "{backend}"
"""


def haproxy_tls_config(cpu, binds, pki, backend):
    return HAPROXY_TLS_CONFIG.format(cpu=cpu, bind_ecdsa=binds["ecdsa"], bind_rsa=binds["rsa"], ecdsa=pki["ecdsa"],
                                     rsa=pki["rsa"], backend=backend, ca=pki["internal_ca"], name=BACKEND_NAME)


def ringlb_tls_config(pki, backend, extra=""):
    return RINGLB_TLS_CONFIG.format(extra=extra, ecdsa=pki["ecdsa"], rsa=pki["rsa"], ca=pki["internal_ca"],
                                    name=BACKEND_NAME, backend=backend)


# ---------------------------------------------------------------------- OpenSSL floors

SPEED_CIPHERS = ("aes-256-gcm", "aes-128-gcm", "chacha20-poly1305")


def openssl_speed(cpu, seconds, pkey=("ecdsap256", "rsa2048", "ecdhp256", "ecdhx25519"), ciphers=SPEED_CIPHERS,
                  env=None, elapsed=False):
    """Primitive rates from `openssl speed`, pinned to CPU (ELAPSED: per wall-clock second,
    what one core gives end to end, else per CPU second): ops/s for signatures and key agreement (PKEY: names
    as `openssl speed` takes them, e.g. ecdsap256, rsa2048, rsa4096, ecdhx25519), bytes/s for
    the AEADs (CIPHERS, as -evp names) over 16 KiB buffers (one TLS record's worth). ENV: the
    environment of openssl (e.g. OPENSSL_ia32cap)."""
    base = ["taskset", "-c", str(cpu), "openssl", "speed", *(["-elapsed"] if elapsed else []), "-seconds",
            str(seconds)]
    r = {}
    if pkey:
        out = subprocess.run([*base, *pkey], capture_output=True, text=True, timeout=60 + 5 * len(pkey) * seconds,
                             env=env).stdout
        m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
        if m:
            r["ecdsap256_sign_per_s"], r["ecdsap256_verify_per_s"] = float(m.group(1)), float(m.group(2))
        for m in re.finditer(r"^rsa\s+(\d+) bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out, re.M):
            r[f"rsa{m.group(1)}_sign_per_s"], r[f"rsa{m.group(1)}_verify_per_s"] = float(m.group(2)), float(m.group(3))
        m = re.search(r"256 bits ecdh \(nistp256\)\s+\S+\s+([\d.]+)", out)
        if m:
            r["ecdhp256_per_s"] = float(m.group(1))
        m = re.search(r"ecdh \(X25519\)\s+\S+\s+([\d.]+)", out)
        if m:
            r["x25519_per_s"] = float(m.group(1))
    for cipher in ciphers:
        out = subprocess.run([*base, "-bytes", "16384", "-evp", cipher], capture_output=True, text=True,
                             timeout=60 + 5 * seconds, env=env).stdout
        m = re.search(r"^\S+\s+([\d.]+)k\s*$", out.strip().splitlines()[-1] if out.strip() else "")
        if m:
            r[f"{cipher}_bytes_per_s"] = float(m.group(1)) * 1000
    return r


def handshake_bench(binary, cpu, min_time):
    """Runs bench_tls_handshake pinned to CPU; returns {name: {cpu_us, server_us, client_us,
    bytes_per_s}}."""
    out = subprocess.run(["taskset", "-c", str(cpu), binary, "--benchmark_format=json",
                          f"--benchmark_min_time={min_time}"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"bench_tls_handshake failed: {out.stderr}")
    res = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        res[b["name"]] = {"cpu_us": b["cpu_time"] * scale, "server_us": b.get("server_us"),
                          "client_us": b.get("client_us"), "bytes_per_s": b.get("bytes_per_second")}
    return res


def floors(speed, hs):
    """CPU floors of a terminating, re-encrypting proxy, per scenario: per handshake in us,
    per GB relayed in s. 'openssl' = in-memory OpenSSL (bench_tls_handshake): the server side
    of the client's handshake + the client side of a resumed backend handshake (both LBs
    reuse backend sessions), or one record encrypt + decrypt per byte. 'primitives' = the
    bare public-key and AEAD operations from openssl speed (a TLS 1.3 handshake with x25519
    costs each side one key generation and one derivation, counted as two X25519 ops)."""
    f = {}
    full = lambda k: hs.get(f"BM_FullHandshake/{k}", {})
    resumed = hs.get("BM_ResumedHandshake", {})
    rt = hs.get("BM_RecordRoundTrip/aes256gcm", {})
    x = 2e6 / speed["x25519_per_s"] if speed.get("x25519_per_s") else None
    sign = {"ecdsa": speed.get("ecdsap256_sign_per_s"), "rsa": speed.get("rsa2048_sign_per_s")}
    for scen, kind in (("tls-full-ecdsa", "ecdsa"), ("tls-full-rsa", "rsa")):
        s, c = full(kind).get("server_us"), resumed.get("client_us")
        f[scen] = {"openssl": s + c if s and c else None, "server_us": s, "backend_client_us": c,
                   "backend_full_client_us": full("ecdsa").get("client_us"),
                   "primitives": 1e6 / sign[kind] + 2 * x if sign[kind] and x else None}
    s, c = resumed.get("server_us"), resumed.get("client_us")
    f["tls-resume"] = {"openssl": s + c if s and c else None, "server_us": s, "backend_client_us": c,
                       "primitives": 2 * x if x else None}
    bps = rt.get("bytes_per_s")
    aes = speed.get("aes-256-gcm_bytes_per_s")
    for scen in ("tls-bulk-up", "tls-bulk-down"):
        f[scen] = {"openssl": 1e9 / bps if bps else None, "primitives": 2e9 / aes if aes else None}
    return f
