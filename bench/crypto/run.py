#!/usr/bin/python3
"""Crypto benchmark: TLS handshakes and bulk transfer through ringlb across key types, TLS
versions, ciphers, crypto back-ends and proxy modes (see bench/README.md, "Crypto matrix").

    bench/crypto/run.py --short                 # 9 cells, under 2 minutes
    bench/crypto/run.py                         # the full matrix (about 15 minutes)
    bench/crypto/run.py --haproxy               # + HAProxy 2.6 for the same cells
    bench/crypto/run.py --only full/rsa-4096    # cells whose id contains every given word

ringlb (or HAProxy) runs pinned to CPU 0 with one worker; the load generator
(e2e_tls_loadgen), the backends (e2e_sink) and this script run on CPU 1. One LB process per
group of cells that share a configuration; the LB's CPU is utime+stime from /proc/PID/stat
over each measured phase. `openssl speed` runs once per run on CPU 0, before any LB (rates
per CPU second unless --speed-elapsed), and gives each cell its one-core limit
(matrix.limit).

Writes DIR/results.json (one record per cell plus machine, openssl speed and noise), a
Markdown table DIR/results.md, and DIR/handshakes.png and DIR/bulk.png (matplotlib; without
it the PNGs are left out and the JSON says so). Only processes started here are stopped, by
PID; all traffic is to 127.0.0.1; every load loop is bounded by time and count.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench", "e2e"))
import tls  # noqa: E402
import matrix  # noqa: E402
import crypto_report  # noqa: E402
from procs import Proc, can_connect, cpu_times, free_port, machine, measure_phase, wait_for, wait_quiet  # noqa: E402
from report import GEN_CPU, LB_CPU, noise  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# Load per workload: 32 connections at a time with a 64-byte request and response for
# handshakes (as bench/e2e's tls phases), 4 streams of 64 MiB (short: 16 MiB) for bulk.
HANDSHAKE_ARGS = ["--concurrency", "32", "--request", "64", "--response", "64"]


def bulk_args(direction, short):
    per_conn = "16M" if short else "64M"
    return ["bulk", "--concurrency", "4", "--direction", direction, "--bytes-per-conn", per_conn,
            "--max-bytes", "64G"]


def tls_args(cell):
    return ["--tls", cell.tls, "--cipher", cell.cipher, "--sni", tls.SNI]


def negotiated_ok(cell, negotiated):
    """The load generator's "TLSv1.3 TLS_AES_128_GCM_SHA256 x25519" matches the cell."""
    parts = (negotiated or "").split()
    if len(parts) < 2 or parts[0] != f"TLSv{cell.tls}":
        return False
    squash = lambda s: s.upper().replace("-", "").replace("_", "")
    return squash(cell.cipher) in squash(parts[1])


class Bench:
    def __init__(self, args, cells):
        self.args = args
        self.cells = cells
        self.bin = args.bin_dir or os.path.join(args.build_dir, "bench")
        self.ringlb = args.ringlb or os.path.join(args.build_dir, "app", "ringlb")
        self.work = tempfile.mkdtemp(prefix="ringlb-crypto-")
        self.procs = []
        self.sinks = {}  # "plain" | "reencrypt" | key type -> (Proc, address)
        self.quiet_budget = args.quiet_budget
        self.async_engine = matrix.find_async_engine(args.build_dir, args.async_engine)
        self.status = matrix.backend_status(args.build_dir, args.async_engine)
        self.pki = None
        self.speed = {}
        self.crypto_ok = False

    # ------------------------------------------------------------------ processes

    def start(self, argv, name, env=None):
        p = Proc(argv, os.path.join(self.work, f"{name}.log"), env)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.stop()
        self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)

    def sink(self, kind):
        """The backend for a cell: "plain" (terminate: plaintext without the hello record),
        "reencrypt" (TLS with the internal CA's certificate), or a key type (passthrough: the
        client's TLS ends here, so the sink has the cell's certificate)."""
        if kind not in self.sinks:
            ready = os.path.join(self.work, f"sink-{kind}.ready")
            extra = {"plain": ["--no-hello", "1"], "reencrypt": ["--tls-cert", self.pki["backend"]]}.get(
                kind) or ["--tls-cert", self.pki[matrix.KEYS[kind][0]]]
            p = self.start(["taskset", "-c", str(GEN_CPU), f"{self.bin}/e2e_sink", "--ready-file", ready,
                            "--lifetime", "3600", *extra], f"sink-{kind}")
            wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, f"sink {kind}")
            if not p.alive():
                raise RuntimeError(f"sink {kind} exited:\n{p.output()}")
            with open(ready) as f:
                self.sinks[kind] = (p, f.read().split()[1])
        return self.sinks[kind]

    def sink_for(self, cell):
        return self.sink({"terminate": "plain", "reencrypt": "reencrypt"}.get(cell.mode, cell.key))

    def lb_env(self, cell):
        env = dict(os.environ)
        env.update(matrix.lb_env(cell, self.args.async_delay_us))
        return env

    def ringlb_config(self, cell, backend_addr):
        section = matrix.ringlb_crypto_section(cell, self.async_engine, self.crypto_ok)
        return matrix.ringlb_config(cell, self.pki[matrix.KEYS[cell.key][0]], backend_addr, self.pki, section)

    def probe_crypto_section(self):
        """Does this ringlb parse [crypto]? (`ringlb check` on a default terminate config.)"""
        cell = matrix.Cell("ringlb", "full", "ecdsa-p256", "1.3", "aes-128-gcm", "default", "terminate")
        cfg = os.path.join(self.work, "probe.toml")
        with open(cfg, "w") as f:
            f.write(matrix.ringlb_config(cell, self.pki["ecdsa"], "127.0.0.1:9", self.pki,
                                         matrix.ringlb_crypto_section(cell, None, True)))
        r = subprocess.run([self.ringlb, "check", "-c", cfg], capture_output=True, text=True, timeout=30)
        self.crypto_ok = r.returncode == 0
        return {"parsed": self.crypto_ok, "check_output": (r.stdout + r.stderr).strip().splitlines()[-3:]}

    def start_lb(self, cell):
        """Starts the LB for CELL's group: (Proc, address), or (None, why it refused)."""
        _, backend_addr = self.sink_for(cell)
        name = "-".join(str(x) for x in cell.group).replace(".", "")
        argv_pin = ["taskset", "-c", str(LB_CPU)]
        if cell.lb == "haproxy":
            addr = f"127.0.0.1:{free_port()}"
            cfg = os.path.join(self.work, f"{name}.cfg")
            with open(cfg, "w") as f:
                f.write(matrix.haproxy_config(cell, LB_CPU, addr, self.pki[matrix.KEYS[cell.key][0]], backend_addr,
                                              self.pki))
            p = self.start([*argv_pin, HAPROXY, "-db", "-f", cfg], name, self.lb_env(cell))
            wait_for(lambda: can_connect(addr) or not p.alive(), 10, name)
        else:
            cfg = os.path.join(self.work, f"{name}.toml")
            with open(cfg, "w") as f:
                f.write(self.ringlb_config(cell, backend_addr))
            ready = os.path.join(self.work, f"{name}.ready")
            p = self.start([*argv_pin, self.ringlb, "run", "-c", cfg, "--ready-file", ready, "--workers", "1"], name,
                           self.lb_env(cell))
            wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, name)
            addr = None
            if p.alive():
                time.sleep(0.05)
                with open(ready) as f:
                    addr = next(line.split()[2] for line in f if line.startswith("listener "))
        if not p.alive():
            out = p.output().strip().splitlines()
            self.stop(p)
            return None, (out[-1] if out else "exited")
        return p, addr

    # ------------------------------------------------------------------ measuring

    def loadgen(self, addr, lg_args, duration):
        argv = ["taskset", "-c", str(GEN_CPU), f"{self.bin}/e2e_tls_loadgen", *lg_args, "--target", addr,
                "--duration", str(duration)]
        r = subprocess.run(argv, capture_output=True, timeout=duration + 60)
        if r.returncode not in (0, 1) or not r.stdout:
            raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr.decode()}")
        return json.loads(r.stdout)

    def phase(self, lb, sink, addr, lg_args):
        """One measured phase; measured once more if it was noisy and the budget allows."""
        duration = self.args.duration
        attempts = []
        while True:
            waited, busy_before = wait_quiet((LB_CPU, GEN_CPU), self.args.quiet_max, min(self.quiet_budget, 5.0))
            self.quiet_budget -= waited
            r = measure_phase(lb.pid, [sink.pid], lambda: self.loadgen(addr, lg_args, duration))
            r["noise"], r["quiet_wait_s"], r["busy_before"] = noise(r), waited, busy_before
            attempts.append(r)
            if r["noise"] <= self.args.noise_max or len(attempts) >= 2 or self.quiet_budget < duration + 1:
                break
            self.quiet_budget -= duration + 1
        best = min(attempts, key=lambda a: a["noise"])
        best["noisy_attempts"] = [a["noise"] for a in attempts if a is not best]
        return best

    def smoke(self, cell, addr):
        """Verified chain and name, resumption, and the cell's version and cipher; also warms
        the LB up. None if fine, else what went wrong."""
        r = self.loadgen(addr, ["resume", "--concurrency", "2", "--max-conns", "12", "--ca", self.pki["public_ca"],
                                *tls_args(cell)], 3)
        if r["errors"] or r["completed"] != 12:
            return f"smoke test: {r['completed']}/12 completed, errors {r['error_kinds']}"
        if not negotiated_ok(cell, r.get("tls")):
            return f"negotiated {r.get('tls')!r}, expected TLS {cell.tls} {cell.cipher}"
        return None

    def measure_cell(self, cell, lb, addr):
        sink, _ = self.sink_for(cell)
        if cell.workload == "bulk":
            phases = {d: self.phase(lb, sink, addr, [*bulk_args(d, self.args.short), *tls_args(cell)])
                      for d in ("up", "down")}
        else:
            mode = "handshake" if cell.workload == "full" else "resume"
            phases = {cell.workload: self.phase(lb, sink, addr, [mode, *HANDSHAKE_ARGS, *tls_args(cell)])}
        rec = crypto_report.cell_record(cell, phases, matrix.limit(cell, self.speed))
        if not all(negotiated_ok(cell, p.get("tls")) for p in phases.values()):
            rec["status"] = f"error: negotiated {sorted({p.get('tls') for p in phases.values()})}"
        return rec

    # ------------------------------------------------------------------ the run

    def run_speed(self):
        pkey, aead, no_aesni = matrix.speed_needs(self.cells)
        print(f"openssl speed on CPU {LB_CPU}: {' '.join(pkey + aead)}"
              f"{' + without AES-NI: ' + ' '.join(no_aesni) if no_aesni else ''}", file=sys.stderr, flush=True)
        elapsed = self.args.speed_elapsed
        self.speed["default"] = tls.openssl_speed(LB_CPU, 1, pkey=pkey, ciphers=aead, elapsed=elapsed)
        if no_aesni:
            env = dict(os.environ, **matrix.NO_AESNI_ENV)
            self.speed["no-aesni"] = tls.openssl_speed(LB_CPU, 1, pkey=(), ciphers=no_aesni, env=env, elapsed=elapsed)

    def run(self):
        records = []
        n = len(self.cells)
        planned = lambda c: (2 if c.workload == "bulk" else 1) * (self.args.duration + 0.8)
        todo = sum(planned(c) for c in self.cells if not matrix.skip_reason(c, self.status))
        t0, done = time.monotonic(), 0.0
        lb = group = None
        for i, cell in enumerate(self.cells, 1):
            why = matrix.skip_reason(cell, self.status)
            if cell.group != group:
                if lb:
                    self.stop(lb)
                lb, addr, group, group_error = None, None, cell.group, None
            if not why and lb is None and group_error is None:
                lb, refused = self.start_lb(cell)
                if lb is None:
                    group_error = f"{cell.lb} refused the configuration: {refused}"
                else:
                    addr = refused
                    group_error = self.smoke(cell, addr)
            if why:
                rec = crypto_report.cell_record(cell, {}, (None, None), status=f"skipped: {why}")
            elif group_error:
                # A back-end this ringlb does not support yet is a skip, not a failure.
                status = "skipped" if cell.backend in (*matrix.ASYNC_BACKENDS, "ktls") else "error"
                rec = crypto_report.cell_record(cell, {}, (None, None), status=f"{status}: {group_error}")
            else:
                rec = self.measure_cell(cell, lb, addr)
                done += planned(cell)
            records.append(rec)
            elapsed = time.monotonic() - t0
            eta = (todo - done) * (elapsed / done) if done else todo
            print(f"[{i:3d}/{n}] {elapsed:5.0f}s ETA {eta:4.0f}s  {cell.id}: {crypto_report.summary(rec)}",
                  file=sys.stderr, flush=True)
        if lb:
            self.stop(lb)
        return records


def noise_summary(records, t0, t1, load0, load1):
    """Machine-wide noise of the run: steal and busy time per CPU from /proc/stat over the
    whole run, load average before and after, and the measured cells' noise (other work on
    CPU 0/1 + steal, as a share of the phase)."""
    cell_noise = sorted(p["noise"] for r in records for p in r.get("phases", {}).values())
    mid = cell_noise[len(cell_noise) // 2] if cell_noise else None
    return {"steal_s": {str(c): round(t1[c][1] - t0[c][1], 2) for c in t1},
            "busy_s": {str(c): round(t1[c][0] - t0[c][0], 2) for c in t1},
            "loadavg_before": load0, "loadavg_after": load1,
            "cell_noise_median": mid, "cell_noise_max": cell_noise[-1] if cell_noise else None,
            "phases_noisier_than_0.1": sum(1 for x in cell_noise if x > 0.1), "phases": len(cell_noise)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="9 cells, 0.8 s phases: under 2 minutes")
    ap.add_argument("--out", help="output directory (default BUILD_DIR/crypto-bench)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--bin-dir", help="e2e_tls_loadgen and e2e_sink (default BUILD_DIR/bench)")
    ap.add_argument("--ringlb", help="the ringlb binary (default BUILD_DIR/app/ringlb)")
    ap.add_argument("--haproxy", action="store_true", help="also measure HAProxy 2.6 for the same cells")
    ap.add_argument("--only", nargs="+", default=[], metavar="WORD",
                    help="only cells whose id (lb/workload/key/tlsV/cipher/backend/mode) contains every WORD")
    ap.add_argument("--duration", type=float, help="seconds per measured phase (default 2, short 0.8)")
    ap.add_argument("--async-engine", help="the async test provider (.so, tests/async_engine); default: searched "
                                           "under BUILD_DIR/tests")
    ap.add_argument("--async-delay-us", type=int, default=matrix.ASYNC_DELAY_US,
                    help="the async test provider's signing latency (RINGLB_TEST_ASYNC_DELAY_US of the LB)")
    ap.add_argument("--quiet-max", type=float, default=0.10,
                    help="before each phase wait (within the budget) until CPUs 0 and 1 are at most this busy")
    ap.add_argument("--noise-max", type=float, default=0.10,
                    help="measure a phase once more when other work or steal took more than this share of a CPU")
    ap.add_argument("--quiet-budget", type=float, help="seconds the run may spend waiting or re-measuring "
                                                        "(default 60, short 10)")
    ap.add_argument("--speed-elapsed", action="store_true",
                    help="openssl speed -elapsed (rates per wall-clock second; on a shared machine they then "
                         "include the neighbours' load) instead of per CPU second")
    ap.add_argument("--nice", type=int, default=-10, help="niceness of the run and everything it starts (0: off)")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.duration = args.duration or (0.8 if args.short else 2.0)
    args.quiet_budget = args.quiet_budget if args.quiet_budget is not None else (10.0 if args.short else 60.0)
    out_dir = os.path.abspath(args.out or os.path.join(args.build_dir, "crypto-bench"))
    lbs = ("ringlb", "haproxy") if args.haproxy else ("ringlb",)
    cells = matrix.short_matrix(lbs) if args.short else matrix.full_matrix(lbs)
    cells = [c for c in cells if all(w in c.id for w in args.only)]
    if not cells:
        sys.exit("no cell matches --only")
    if os.cpu_count() < 2:
        sys.exit("needs at least 2 CPUs (LB on CPU 0, load on CPU 1)")
    b = Bench(args, cells)
    for path in (b.ringlb, f"{b.bin}/e2e_tls_loadgen", f"{b.bin}/e2e_sink"):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is not built: cmake -S {REPO} -B {args.build_dir} && make -C {args.build_dir} -j2")
    os.makedirs(out_dir, exist_ok=True)
    os.sched_setaffinity(0, {GEN_CPU})  # this script stays off the LB's CPU
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    out = {"machine": machine(HAPROXY), "mode": "short" if args.short else "full", "started": time.strftime("%F %T"),
           "settings": {"duration_s": args.duration, "handshake_load": HANDSHAKE_ARGS,
                        "bulk_load": bulk_args("up|down", args.short), "lb_cpu": LB_CPU, "gen_cpu": GEN_CPU,
                        "only": args.only, "lbs": list(lbs), "async_delay_us": args.async_delay_us,
                        "openssl_speed_rates": "per wall-clock second" if args.speed_elapsed else "per CPU second"},
           "backends": {k: v or "available" for k, v in b.status.items()}, "async_engine": b.async_engine}
    t0, load0 = cpu_times(), os.getloadavg()
    started = time.monotonic()
    try:
        b.pki = tls.make_pki(b.work, {k: v for k, v in matrix.EXTRA_LEAVES.items()
                                      if k in {matrix.KEYS[key][0] for key in matrix.needed_keys(cells)}})
        out["crypto_section"] = b.probe_crypto_section()
        b.run_speed()
        out["openssl_speed"] = b.speed
        records = b.run()
    finally:
        b.stop_all()
    out["cells"] = records
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["finished"] = time.strftime("%F %T")
    out["noise"] = noise_summary(records, t0, cpu_times(), load0, os.getloadavg())
    out["plots"] = crypto_report.plots(records, out_dir)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(out, f, indent=1, default=list)
    md = crypto_report.markdown(out)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    print("\n" + md)
    print(f"\n{out_dir}: results.json results.md {' '.join(out['plots'].get('files', []))}")
    return 0 if not any(r["status"].startswith("error") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
