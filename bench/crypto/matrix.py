"""The crypto benchmark's matrix for bench/crypto/run.py: cells, which back-ends this machine
has, the LB configurations of a cell, and the one-core limit from `openssl speed` that a
cell's measurements are compared with. Python stdlib only.

A cell is one measurement: an LB (ringlb, or HAProxy with --haproxy) under one workload
(full handshakes, resumed handshakes, or bulk transfer up and down) with one certificate key
type, TLS version, cipher, crypto back-end and proxy mode. Cells that share everything but
the workload share one LB process (a "group").
"""
import dataclasses
import glob
import os

from tls import BACKEND_NAME  # bench/e2e/tls.py (run.py puts bench/e2e on sys.path)

KEYS = {  # key type -> (PKI leaf name in bench/e2e/tls.py, openssl speed name of its signature)
    "ecdsa-p256": ("ecdsa", "ecdsap256"),
    "rsa-2048": ("rsa", "rsa2048"),
    "rsa-4096": ("rsa4096", "rsa4096"),
}
EXTRA_LEAVES = {"rsa4096": ["-newkey", "rsa:4096"]}  # make_pki makes P-256 and RSA-2048 itself

# cipher -> (TLS 1.3 suite, TLS 1.2 ciphers for either certificate type); the load generator
# has the same table (bench/e2e/tls_loadgen.cc kCiphers) and offers only the cell's cipher.
CIPHERS = {
    "aes-128-gcm": ("TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
    "aes-256-gcm": ("TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"),
    "chacha20-poly1305": ("TLS_CHACHA20_POLY1305_SHA256",
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
}
VERSIONS = ("1.2", "1.3")
MODES = ("passthrough", "terminate", "reencrypt")
BACKENDS = ("default", "no-aesni", "async-engine", "async-engine-off", "ktls")
# The simulated accelerator (tests/async_engine: an OpenSSL provider, despite the back-ends'
# historical name) with [crypto] async = true, and the same provider with async = false.
ASYNC_BACKENDS = ("async-engine", "async-engine-off")
ASYNC_PROPERTY_QUERY = "?ringlb.async=yes,?ringlb.wrapped=no"
ASYNC_DELAY_US = 2000  # the provider's signing latency (RINGLB_TEST_ASYNC_DELAY_US)
WORKLOADS = ("full", "resume", "bulk")

# OpenSSL's x86 capability mask without AES-NI (CPUID.1:ECX bit 25 -> bit 57) and PCLMULQDQ
# (bit 1 -> bit 33), so AES-GCM runs in constant-time software (OPENSSL_ia32cap(3)).
NO_AESNI_ENV = {"OPENSSL_ia32cap": "~0x200000200000000"}


@dataclasses.dataclass(frozen=True)
class Cell:
    lb: str
    workload: str
    key: str
    tls: str
    cipher: str
    backend: str
    mode: str

    @property
    def id(self):
        return f"{self.lb}/{self.workload}/{self.key}/tls{self.tls}/{self.cipher}/{self.backend}/{self.mode}"

    @property
    def group(self):
        """Cells with the same group run against one LB process."""
        return (self.lb, self.key, self.tls, self.cipher, self.backend, self.mode)


def full_matrix(lbs=("ringlb",)):
    """Every combination that measures something different; what is left out and why:
    - the key type only changes handshakes, so bulk cells use ECDSA P-256;
    - the cipher barely changes a handshake, so handshake cells use AES-128-GCM;
    - resumption skips the certificate signature, so resume cells use ECDSA P-256 only;
    - passthrough LBs do no crypto, so passthrough cells use the default back-end only;
    - AES-NI and kTLS only touch records, so handshake cells use default and the async
      provider (on and off); the async provider only touches handshakes, so bulk cells use
      it with async on only."""
    cells = []
    for lb in lbs:
        for tls in VERSIONS:
            for mode in MODES:
                hs_backends = ("default",) if mode == "passthrough" else ("default", *ASYNC_BACKENDS)
                bulk_backends = ("default",) if mode == "passthrough" else tuple(
                    b for b in BACKENDS if b != "async-engine-off")
                for backend in hs_backends:
                    cells += [Cell(lb, "full", key, tls, "aes-128-gcm", backend, mode) for key in KEYS]
                    cells.append(Cell(lb, "resume", "ecdsa-p256", tls, "aes-128-gcm", backend, mode))
                for backend in bulk_backends:
                    cells += [Cell(lb, "bulk", "ecdsa-p256", tls, cipher, backend, mode) for cipher in CIPHERS]
    return order(cells)


def short_matrix(lbs=("ringlb",)):
    """A few cells that touch every workload, mode, key family and back-end handling (two of
    them are skipped on a machine without the async engine or kTLS)."""
    cells = []
    for lb in lbs:
        cells += [Cell(lb, "full", "ecdsa-p256", "1.3", "aes-128-gcm", "default", "terminate"),
                  Cell(lb, "resume", "ecdsa-p256", "1.3", "aes-128-gcm", "default", "terminate"),
                  Cell(lb, "bulk", "ecdsa-p256", "1.3", "aes-128-gcm", "default", "terminate"),
                  Cell(lb, "full", "rsa-2048", "1.2", "aes-256-gcm", "default", "reencrypt"),
                  Cell(lb, "bulk", "rsa-2048", "1.2", "aes-256-gcm", "default", "reencrypt"),
                  Cell(lb, "bulk", "ecdsa-p256", "1.3", "chacha20-poly1305", "default", "passthrough"),
                  Cell(lb, "bulk", "ecdsa-p256", "1.3", "aes-128-gcm", "no-aesni", "terminate"),
                  Cell(lb, "full", "ecdsa-p256", "1.3", "aes-128-gcm", "async-engine", "terminate"),
                  Cell(lb, "bulk", "ecdsa-p256", "1.3", "aes-128-gcm", "ktls", "terminate")]
    return order(cells)


def order(cells):
    """Grouped by LB process, groups in first-seen order, workloads in WORKLOADS order."""
    groups = {}
    for c in cells:
        groups.setdefault(c.group, []).append(c)
    return [c for g in groups.values() for c in sorted(g, key=lambda c: WORKLOADS.index(c.workload))]


def needed_keys(cells):
    return sorted({c.key for c in cells}, key=list(KEYS).index)


# ---------------------------------------------------------------------- back-ends

def find_async_engine(build_dir, explicit=None):
    """The async test provider (tests/async_engine, built as ringlb_async_provider.so by its
    own CMake target), or None. EXPLICIT (--async-engine) wins; else the first
    *async*provider*.so / *async*engine*.so / *async*.so under BUILD_DIR/tests."""
    if explicit:
        return os.path.abspath(explicit) if os.path.exists(explicit) else None
    for pattern in ("**/*async*provider*.so", "**/*async*engine*.so", "**/*async*.so"):
        found = sorted(glob.glob(os.path.join(build_dir, "tests", pattern), recursive=True))
        if found:
            return found[0]
    return None


def kernel_has_tls_ulp():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return False


def backend_status(build_dir, async_engine=None):
    """back-end -> None if usable here, else the reason its cells are skipped."""
    async_status = None if find_async_engine(build_dir, async_engine) else "async test engine not built"
    return {"default": None, "no-aesni": None, "async-engine": async_status, "async-engine-off": async_status,
            "ktls": None if kernel_has_tls_ulp() else "kernel has no TLS ULP"}


def skip_reason(cell, status):
    if cell.lb == "haproxy" and cell.backend in (*ASYNC_BACKENDS, "ktls"):
        return f"{cell.backend} not measured for HAProxy in this harness"
    return status.get(cell.backend)


def lb_env(cell, async_delay_us=ASYNC_DELAY_US):
    """Environment additions of the LB process (the load generator and sinks keep AES-NI and
    sign at once)."""
    if cell.backend == "no-aesni":
        return dict(NO_AESNI_ENV)
    if cell.backend in ASYNC_BACKENDS:
        return {"RINGLB_TEST_ASYNC_DELAY_US": str(async_delay_us)}
    return {}


# ---------------------------------------------------------------------- LB configurations

def _ringlb_policy(cell):
    suite, ciphers = CIPHERS[cell.cipher]
    return (f'policy = "intermediate"\nmin_version = "{cell.tls}"\nmax_version = "{cell.tls}"\n'
            f'ciphers = "{ciphers}"\nciphersuites = "{suite}"\n')


def ringlb_crypto_section(cell, async_engine, crypto_ok):
    """[crypto] for the cell's back-end. CRYPTO_OK: this ringlb parses [crypto]; without it
    the default back-end writes none (user-space records are then the only kind), and the
    other back-ends write theirs anyway so that ringlb says why it refuses them."""
    if cell.backend in ASYNC_BACKENDS:
        # A provider loaded by path next to the default one; the query makes signatures
        # prefer it and leaves every other fetch to the default provider.
        on = "true" if cell.backend == "async-engine" else "false"
        return (f'[crypto]\nproviders = ["default", "{async_engine}"]\n'
                f'property_query = "{ASYNC_PROPERTY_QUERY}"\nasync = {on}\nktls = "off"\n')
    if cell.backend == "ktls":
        return '[crypto]\nktls = "on"\n'
    return '[crypto]\nktls = "off"\n' if crypto_ok else ""


def ringlb_config(cell, cert, backend_addr, pki, crypto_section):
    """One listener in the cell's mode, one pool with one backend; the cell's TLS version and
    cipher on both legs (listener and pool), tickets and backend session reuse on."""
    tls_listener = ""
    if cell.mode != "passthrough":
        tls_listener = (f'\n[listener.tls]\ncertificates = ["{cert}"]\nalpn = []\nsession_tickets = true\n'
                        f'session_cache_size = 20000\n{_ringlb_policy(cell)}')
    tls_pool = ""
    if cell.mode == "reencrypt":
        tls_pool = (f'\n[pool.tls]\nca_file = "{pki["internal_ca"]}"\nverify = true\n'
                    f'verify_name = "{BACKEND_NAME}"\nsession_reuse = true\n{_ringlb_policy(cell)}')
    return (f'[global]\nworkers = 1\naccess_log = false\nlog_level = "warn"\ndrain_timeout = "1s"\n\n'
            f'{crypto_section}\n'
            f'[[listener]]\nname = "vip"\nbind = ["127.0.0.1:0"]\n'
            f'mode = "{"passthrough" if cell.mode == "passthrough" else "terminate"}"\ndefault_pool = "p"\n'
            f'{tls_listener}\n[[pool]]\nname = "p"\nalgorithm = "round_robin"\n{tls_pool}\n'
            f'[[pool.backend]]\nname = "b1"\naddress = "{backend_addr}"\n')


def haproxy_config(cell, cpu, bind, cert, backend_addr, pki):
    """HAProxy 2.6 for the same cell: one thread on CPU, mode tcp, the cell's version and
    cipher on the bind (terminate) and server (re-encrypt) lines; its defaults otherwise
    (backend session reuse and tickets on, as in bench/e2e/tls.py)."""
    suite, ciphers = CIPHERS[cell.cipher]
    ver = f"TLSv{cell.tls}"
    policy = f" ssl-min-ver {ver} ssl-max-ver {ver} ciphers {ciphers} ciphersuites {suite}"
    bind_ssl = f" ssl crt {cert}{policy}" if cell.mode != "passthrough" else ""
    server_ssl = (f" ssl verify required ca-file {pki['internal_ca']} verifyhost {BACKEND_NAME}{policy}"
                  if cell.mode == "reencrypt" else "")
    return (f"global\n    nbthread 1\n    cpu-map 1/1 {cpu}\n    maxconn 4000\n    tune.bufsize 16384\n\n"
            f"defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n"
            f"frontend f\n    bind {bind}{bind_ssl}\n    maxconn 4000\n    default_backend b\n\n"
            f"backend b\n    server s1 {backend_addr}{server_ssl}\n")


# ---------------------------------------------------------------------- one-core limits

def speed_needs(cells):
    """(openssl speed public-key names, AEAD names, AEADs also needed without AES-NI)."""
    pkey = {"ecdhx25519"} | {KEYS[c.key][1] for c in cells if c.workload == "full"}
    aead = {c.cipher for c in cells if c.workload == "bulk"}
    no_aesni = {c.cipher for c in cells if c.workload == "bulk" and c.backend == "no-aesni"}
    return sorted(pkey), sorted(aead), sorted(no_aesni)


def limit(cell, speed):
    """What one core could do of the primitives the LB must run per unit of this cell, from
    `openssl speed` (SPEED: back-end -> rates): (per-second limit, what it counts) or
    (None, why not). Per full handshake: one signature with the cell's key + two X25519
    operations (key share); a resumed TLS 1.3 handshake: two X25519 (psk_dhe_ke), TLS 1.2:
    none; re-encryption adds a resumed backend handshake (two X25519 in TLS 1.3). Per byte of
    bulk: one AEAD pass (terminate) or two (re-encrypt: decrypt + encrypt). Passthrough: the
    LB runs no crypto."""
    if cell.mode == "passthrough":
        return None, "passthrough: the LB runs no crypto"
    sp = speed.get("no-aesni" if cell.backend == "no-aesni" else "default", {})
    legs = 2 if cell.mode == "reencrypt" else 1
    if cell.workload == "bulk":
        bps = sp.get(f"{cell.cipher}_bytes_per_s")
        if not bps:
            return None, f"no openssl speed result for {cell.cipher}"
        return bps / legs, f"{legs} x {cell.cipher} (bytes/s)"
    x = sp.get("x25519_per_s") or speed.get("default", {}).get("x25519_per_s")
    kex = 2 if cell.tls == "1.3" else 0  # resumed handshake: key share only in TLS 1.3
    if cell.workload == "resume":
        ops = kex * legs
        if ops == 0:
            return None, "resumed TLS 1.2 handshakes run no public-key primitive"
        return (x / ops, f"{ops} x X25519") if x else (None, "no X25519 speed")
    sign_name = KEYS[cell.key][1]
    sign = sp.get(f"{sign_name}_sign_per_s") or speed.get("default", {}).get(f"{sign_name}_sign_per_s")
    if not sign or not x:
        return None, f"no openssl speed result for {sign_name} or X25519"
    x_ops = 2 + (kex if legs == 2 else 0)
    return 1 / (1 / sign + x_ops / x), f"1 x {sign_name} sign + {x_ops} x X25519"
