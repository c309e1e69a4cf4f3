#!/usr/bin/python3
"""End-to-end benchmark: ringlb (relay=buffers, relay=splice) and HAProxy, side by side.

All load balancers run at once on loopback, each pinned to CPU 0 (taskset -c 0; ringlb
--workers 1, HAProxy nbthread 1 + cpu-map). The load generator (e2e_loadgen), the backend
(e2e_sink) and this script run on CPU 1. Every scenario is run against every LB with the
same load; the LB's CPU time is utime+stime from /proc/PID/stat over the measured phase.

    bench/e2e/run.py                 # full run, ~3 min
    bench/e2e/run.py --quick         # ~40 s smoke run
    bench/e2e/run.py --perf          # afterwards, perf-profile each LB (cpu-clock, -g)
    bench/e2e/run.py --only haproxy-tls tls-full-ecdsa,tls-resume   # pick LBs and phases

TLS termination (tls-* phases, see tls.py): HAProxy and ringlb terminate the client's TLS
(P-256 or RSA-2048 certificate) and re-encrypt to a TLS e2e_sink verified against an internal
CA; the client is e2e_tls_loadgen; each LB also runs under jemalloc and mimalloc (LD_PRELOAD).
Before those phases the OpenSSL floors are measured on the LB's CPU: openssl speed and
bench_tls_handshake (in-memory handshakes and records).

Prints Markdown tables (absolute numbers and ratios to HAProxy) and writes JSON. Only
processes started here are stopped, by PID; all traffic is to 127.0.0.1. Python stdlib only.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import (GEN_CPU, LB_CPU, PERF, aggregate, floors_markdown, markdown, noise,  # noqa: E402
                    perf_markdown, perf_summary, relay_verdict, tls_markdown)
import tls  # noqa: E402
from procs import (Proc, can_connect, free_port, machine, measure_phase,  # noqa: E402
                   wait_for, wait_quiet)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# name, loadgen arguments. Sizes are identical for every LB.
def scenarios():
    conn = lambda c: ["conn", "--concurrency", str(c), "--request", "64", "--response", "64"]
    # 256 MiB per connection: each connection finishes (and has its byte count verified)
    # several times per phase; the phase itself is bounded by time.
    bulk = lambda d: ["bulk", "--concurrency", "4", "--direction", d, "--bytes-per-conn", "256M",
                      "--max-bytes", "256G"]
    return [("conn-c1", conn(1)), ("conn-c32", conn(32)), ("conn-c256", conn(256)),
            ("bulk-up", bulk("up")), ("bulk-down", bulk("down"))]


RINGLB_CONFIG = """\
[global]
workers = 1
access_log = false
log_level = "warn"
drain_timeout = "1s"
relay = "{relay}"
{extra}
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "p"

[[listener.route]]
sni = "alpha.test"
pool = "p"

[[pool]]
name = "p"
affinity = false

[[pool.backend]]
name = "b1"
address = "{backend}"
"""

# HAProxy's defaults except what the comparison needs: one thread on CPU 0, no logging,
# SNI routing on the ClientHello, and maxconn above the benchmark's concurrency.
# tune.bufsize 16384 is HAProxy's default, stated to show both LBs use 16 KiB buffers.
HAPROXY_CONFIG = """\
global
    nbthread 1
    cpu-map 1/1 {cpu}
    maxconn 4000
    tune.bufsize 16384

defaults
    mode tcp{splice}
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend vip
    bind {bind}
    maxconn 4000
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend b if {{ req.ssl_sni -i alpha.test }}
    default_backend b

backend b
    server s1 {backend}
"""


# Optional extra column: HAProxy with kernel splicing forced both ways ("splice-auto" never
# engaged in this test: its streaming heuristic did not fire, strace showed recvfrom/sendto).
HAPROXY_SPLICE = "\n    option splice-request\n    option splice-response"


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.join(os.path.abspath(args.build_dir), "bench")
        self.ringlb = os.path.join(os.path.abspath(args.build_dir), "app", "ringlb")
        self.work = tempfile.mkdtemp(prefix="ringlb-e2e-")
        self.procs = []
        self.sink = None
        self.lbs = {}
        self.tls_lbs = {}  # name -> (Proc, {"ecdsa": addr, "rsa": addr}), terminate + re-encrypt
        self.tls_sink = None
        self.pki = None
        self.skipped = {}  # LB name -> why it could not run
        self.quiet_budget = min(args.quiet_budget, 10.0) if args.quick else args.quiet_budget
        self.discarded = []  # name -> (Proc, address)

    # ------------------------------------------------------------------ processes

    def start(self, argv, name, env=None):
        p = Proc(argv, os.path.join(self.work, f"{name}.log"), env)
        self.procs.append(p)
        return p

    def start_sink(self, name="sink", extra=()):
        ready = os.path.join(self.work, f"{name}.ready")
        sink = self.start(["taskset", "-c", str(GEN_CPU), f"{self.bin}/e2e_sink", "--ready-file", ready,
                           "--lifetime", "1800", *extra], name)
        wait_for(lambda: os.path.exists(ready) or not sink.alive(), 10, name)
        if not sink.alive():
            raise RuntimeError(f"{name} exited:\n{sink.output()}")
        with open(ready) as f:
            return sink, f.read().split()[1]

    def start_tls_sink(self):
        """The TLS backend: the internal CA's certificate, on CPU 1 with the load generator."""
        self.pki = tls.make_pki(self.work)
        self.tls_sink, self.tls_backend = self.start_sink("sink-tls", ["--tls-cert", self.pki["backend"]])

    @staticmethod
    def alloc_env(alloc):
        env = dict(os.environ)
        if tls.ALLOCATORS[alloc]:
            env["LD_PRELOAD"] = tls.ALLOCATORS[alloc]
        return env

    def check_preload(self, p, name, alloc):
        """The allocator really is mapped into the LB (a wrong path only warns in ld.so)."""
        lib = tls.ALLOCATORS[alloc]
        if lib:
            with open(f"/proc/{p.pid}/maps") as f:
                if os.path.basename(lib) not in f.read():
                    raise RuntimeError(f"{name}: {lib} is not loaded")

    def start_haproxy_tls(self, name, alloc):
        binds = {k: f"127.0.0.1:{free_port()}" for k in ("ecdsa", "rsa")}
        cfg = os.path.join(self.work, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(tls.haproxy_tls_config(LB_CPU, binds, self.pki, self.tls_backend))
        p = self.start(["taskset", "-c", str(LB_CPU), HAPROXY, "-db", "-f", cfg], name, self.alloc_env(alloc))
        wait_for(lambda: all(can_connect(a) for a in binds.values()) or not p.alive(), 10, name)
        if not p.alive():
            raise RuntimeError(f"{name} exited:\n{p.output()}")
        self.check_preload(p, name, alloc)
        self.tls_lbs[name] = (p, binds)

    def start_ringlb_tls(self, name, alloc):
        """ringlb in terminate mode. Until that mode exists, ringlb rejects the config: the LB
        is then skipped (and listed as such), not an error."""
        cfg = os.path.join(self.work, f"{name}.toml")
        extra = "".join(f"{kv.split('=', 1)[0].strip()} = {kv.split('=', 1)[1].strip()}\n"
                        for kv in self.args.ringlb_global)
        with open(cfg, "w") as f:
            f.write(tls.ringlb_tls_config(self.pki, self.tls_backend, extra))
        ready = os.path.join(self.work, f"{name}.ready")
        p = self.start(["taskset", "-c", str(LB_CPU), self.ringlb, "run", "-c", cfg, "--ready-file", ready,
                        "--workers", "1"], name, self.alloc_env(alloc))
        wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, name)
        if not p.alive():
            self.skipped[name] = p.output().strip().splitlines()[-1:] or ["exited"]
            print(f"{name}: not run, ringlb refused the terminate config: {self.skipped[name][0]}", file=sys.stderr)
            return
        time.sleep(0.05)
        with open(ready) as f:  # "listener NAME ADDRESS" lines
            addrs = {line.split()[1]: line.split()[2] for line in f if line.startswith("listener ")}
        self.check_preload(p, name, alloc)
        self.tls_lbs[name] = (p, {"ecdsa": addrs["tls-ecdsa"], "rsa": addrs["tls-rsa"]})

    def start_ringlb(self, name, relay):
        cfg = os.path.join(self.work, f"{name}.toml")
        with open(cfg, "w") as f:
            extra = "".join(f"{kv.split('=', 1)[0].strip()} = {kv.split('=', 1)[1].strip()}\n"
                            for kv in self.args.ringlb_global)
            f.write(RINGLB_CONFIG.format(relay=relay, backend=self.backend, extra=extra))
        ready = os.path.join(self.work, f"{name}.ready")
        p = self.start(["taskset", "-c", str(LB_CPU), self.ringlb, "run", "-c", cfg, "--ready-file", ready,
                        "--workers", "1"], name)
        wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, name)
        if not p.alive():
            raise RuntimeError(f"{name} exited:\n{p.output()}")
        time.sleep(0.05)  # the ready file is complete once written; give it a moment anyway
        with open(ready) as f:
            addr = f.read().split()[2]
        self.lbs[name] = (p, addr)

    def start_haproxy(self, name, splice=False):
        addr = f"127.0.0.1:{free_port()}"
        cfg = os.path.join(self.work, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CONFIG.format(cpu=LB_CPU, bind=addr, backend=self.backend,
                                          splice=HAPROXY_SPLICE if splice else ""))
        p = self.start(["taskset", "-c", str(LB_CPU), HAPROXY, "-db", "-f", cfg], name)
        wait_for(lambda: can_connect(addr) or not p.alive(), 10, name)
        if not p.alive():
            raise RuntimeError(f"{name} exited:\n{p.output()}")
        self.lbs[name] = (p, addr)

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()

    # ------------------------------------------------------------------ measuring

    def loadgen(self, addr, lg_args, duration, tool="e2e_loadgen"):
        argv = ["taskset", "-c", str(GEN_CPU), f"{self.bin}/{tool}", *lg_args, "--target", addr,
                "--duration", str(duration)]
        r = subprocess.run(argv, capture_output=True, timeout=duration + 60)
        if r.returncode not in (0, 1) or not r.stdout:
            raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr.decode()}")
        return json.loads(r.stdout)

    def wait_quiet(self):
        """On a shared machine, wait (within --quiet-budget seconds for the whole run) until
        neither CPU is busier than --quiet-max with none of our load running."""
        waited, busy = wait_quiet((LB_CPU, GEN_CPU), self.args.quiet_max, self.quiet_budget)
        self.quiet_budget -= waited
        return waited, busy

    def target(self, lb, scen):
        """(LB process, address, load generator binary, sink process) for a scenario."""
        if scen in tls.tls_scenarios():
            proc, addrs = self.tls_lbs[lb]
            return proc, addrs[tls.tls_scenarios()[scen][1]], "e2e_tls_loadgen", self.tls_sink
        proc, addr = self.lbs[lb]
        return proc, addr, "e2e_loadgen", self.sink

    def measure(self, lb, scen, lg_args, warmup, duration):
        proc, addr, tool, sink = self.target(lb, scen)
        waited, idle_busy = self.wait_quiet()
        if warmup > 0:
            self.loadgen(addr, lg_args, warmup, tool)
        time.sleep(0.3)  # let the warm-up's connections finish closing before counting
        # gen_cpu_s: load generator + sink, both on CPU 1
        res = measure_phase(proc.pid, [sink.pid], lambda: self.loadgen(addr, lg_args, duration, tool))
        res["quiet_wait_s"], res["busy_before"] = waited, idle_busy
        return res

    def run(self):
        quick = self.args.quick
        warmup = 0.3 if quick else 0.7
        duration = self.args.duration or (1.0 if quick else 2.5)
        rounds = self.args.rounds or (1 if quick else 3)
        results = {}
        phases = [(scen, lg_args, list(self.lbs)) for scen, lg_args in scenarios()]
        phases += [(scen, lg_args, list(self.tls_lbs)) for scen, (lg_args, _) in tls.tls_scenarios().items()]
        for scen, lg_args, names in phases:
            if not self.args.wanted_scenario(scen) or not names:
                continue
            results[scen] = {lb: [] for lb in names}
            for rnd in range(rounds):
                # Rotate the order so every LB runs in every position once per len(names)
                # rounds (drift and after-effects of the previous phase spread evenly).
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for lb in order:
                    # Warm up (page in buffers, start io-wq workers, grow TCP memory) only
                    # before an LB's first phase of a scenario.
                    r = self.measure(lb, scen, lg_args, warmup if rnd == 0 else 0, duration)
                    # Something else ran on our CPUs during the phase (a neighbour's job, or
                    # hypervisor steal): measure it again, at most twice and while the budget
                    # lasts, and keep the cleanest attempt (the others go to the JSON).
                    attempts = [r]
                    while (noise(r) > self.args.noise_max and len(attempts) < 3 and
                           self.quiet_budget >= duration + 1):
                        print(f"  {scen:10s} {lb:15s} round {rnd + 1}: noise {noise(r):.2f}, again",
                              file=sys.stderr, flush=True)
                        self.quiet_budget -= duration + 1
                        r = self.measure(lb, scen, lg_args, 0, duration)
                        attempts.append(r)
                    r = min(attempts, key=noise)
                    self.discarded += [{"scenario": scen, "lb": lb, **a} for a in attempts if a is not r]
                    results[scen][lb].append(r)
                    print(f"  {scen:10s} {lb:15s} round {rnd + 1}: {summary_line(r)}", file=sys.stderr, flush=True)
        return results

    # ------------------------------------------------------------------ profiling

    def profile(self, scens, seconds):
        """perf record -e cpu-clock -g -p PID while a scenario runs; flat profile summary. TLS
        phases profile the glibc-allocator LBs only."""
        out = {}
        all_scen = dict(scenarios())
        all_scen.update({k: v[0] for k, v in tls.tls_scenarios().items()})
        for scen in scens:
            is_tls = scen in tls.tls_scenarios()
            lbs = [lb for lb in self.tls_lbs if not lb.endswith(("-jemalloc", "-mimalloc"))] if is_tls else list(self.lbs)
            for lb in lbs:
                proc, addr, tool, _ = self.target(lb, scen)
                data = os.path.join(self.work, f"perf-{lb}-{scen}.data")
                rec = subprocess.Popen(["taskset", "-c", str(GEN_CPU), PERF, "record", "-q", "-e", "cpu-clock", "-g",
                                        "-p", str(proc.pid), "-o", data, "--", "sleep", str(seconds)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                self.loadgen(addr, all_scen[scen], seconds - 0.6, tool)
                rec.wait(timeout=seconds + 60)
                out[f"{lb}/{scen}"] = perf_summary(data)
                print(f"  profiled {lb} {scen}: {data}", file=sys.stderr, flush=True)
        return out


def summary_line(r):
    s = f"{r['conns_per_s']:9.0f} conn/s {r['mb_per_s']:8.1f} MB/s lb_cpu {r['lb_cpu_s']:.2f}s err {r['errors']}"
    off = {k: v for k, v in r["lb_threads_cpus"].items() if set(v) - {LB_CPU}}
    return s + (f" OFF-CPU{LB_CPU}: {off}" if off else "")


def build(args):
    subprocess.run(["cmake", "-S", REPO, "-B", args.build_dir, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", args.build_dir, "--target", "ringlb", "e2e_loadgen", "e2e_sink",
                    "e2e_tls_loadgen", "bench_tls_handshake", "-j2"],
                   check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short phases, one round (~30 s)")
    ap.add_argument("--rounds", type=int, help="rounds per scenario and LB (default 3, quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per measured phase (default 2.5, quick 1)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--no-build", action="store_true", help="use the binaries already in --build-dir")
    ap.add_argument("--json", help="write results here (default BUILD_DIR/e2e-results.json)")
    ap.add_argument("--scenarios", nargs="*", help="measure only these scenarios (none: with --perf, profile only)")
    ap.add_argument("--perf", action="store_true", help="then profile each LB with perf record (not measured)")
    ap.add_argument("--perf-seconds", type=float, default=4.0)
    ap.add_argument("--perf-scenarios", nargs="+", default=["conn-c1", "conn-c256", "bulk-up", "bulk-down"])
    ap.add_argument("--ringlb-auto", action="store_true", help='also run ringlb with relay = "auto"')
    ap.add_argument("--haproxy-splice", action="store_true",
                    help="also run HAProxy with option splice-request/splice-response (ratios stay against "
                         "default HAProxy)")
    ap.add_argument("--ringlb-global", action="append", default=[], metavar="KEY=VALUE",
                    help='extra [global] line for both ringlb configs, TOML value syntax, e.g. '
                         'buffers_per_worker=256 or relay=\'"auto"\' (repeatable; for experiments)')
    ap.add_argument("--only", nargs="+", metavar="NAME[,NAME]",
                    help="LB names and/or phase names, space- or comma-separated: start only these LBs "
                         "(ringlb-buffers, ringlb-splice, haproxy; TLS: haproxy-tls[-jemalloc|-mimalloc], "
                         "ringlb-tls[-jemalloc|-mimalloc]; haproxy-tls or ringlb-tls alone means under every "
                         "allocator of --allocators) and run only these phases (conn-c1 conn-c32 "
                         "conn-c256 bulk-up bulk-down tls-full-ecdsa tls-full-rsa tls-resume tls-bulk-up "
                         "tls-bulk-down). A kind left unnamed means all of it.")
    ap.add_argument("--allocators", default="glibc,jemalloc,mimalloc",
                    help="allocators for the TLS LBs, comma-separated (glibc = none preloaded)")
    ap.add_argument("--no-tls", action="store_true", help="skip the TLS-termination phases")
    ap.add_argument("--no-floors", action="store_true",
                    help="skip openssl speed and bench_tls_handshake (the OpenSSL floors)")
    ap.add_argument("--quiet-max", type=float, default=0.10,
                    help="before each measurement wait until both CPUs are at most this busy (0..1)")
    ap.add_argument("--noise-max", type=float, default=0.08,
                    help="re-measure a phase when another process or steal took more than this share "
                         "of CPU 0 or CPU 1 (0..1)")
    ap.add_argument("--quiet-budget", type=float, default=30.0,
                    help="total seconds the whole run may spend waiting for a quiet machine or "
                         "re-measuring noisy phases")
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness for this script and everything it starts (all LBs alike), so that "
                         "unrelated jobs on a shared machine disturb the measurement less; 0 to disable")
    args = ap.parse_args()
    names = [n for item in (args.only or []) for n in item.split(",") if n]
    all_scens = [s for s, _ in scenarios()] + list(tls.tls_scenarios())
    only_scens = [n for n in names if n in all_scens]
    args.only = [n for n in names if n not in all_scens] or None
    if args.scenarios is not None:
        only_scens += args.scenarios
    # --scenarios with no names (profile only) or phases named: those; else everything.
    chosen = only_scens if (only_scens or args.scenarios is not None) else all_scens
    args.wanted_scenario = lambda scen: scen in chosen and not (args.no_tls and scen.startswith("tls-"))
    allocs = [a for a in args.allocators.split(",") if a]
    if any(a not in tls.ALLOCATORS for a in allocs):
        sys.exit(f"--allocators: choose from {', '.join(tls.ALLOCATORS)}")
    if os.cpu_count() < 2:
        sys.exit("needs at least 2 CPUs (LB on CPU 0, load on CPU 1)")
    os.sched_setaffinity(0, {GEN_CPU})  # this script stays off the LB's CPU
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
    if not args.no_build:
        build(args)
    b = Bench(args)
    out = {"machine": machine(HAPROXY), "mode": "quick" if args.quick else "full", "started": time.strftime("%F %T")}
    try:
        b.sink, b.backend = b.start_sink()
        # Passthrough LBs only when a passthrough phase (or profile) will use them.
        need_pass = any(args.wanted_scenario(sc) for sc, _ in scenarios()) or any(
            not sc.startswith("tls-") for sc in (args.perf_scenarios if args.perf else []))
        wanted = lambda name: (not args.only or name in args.only) and (need_pass or "-tls" in name)
        if wanted("ringlb-buffers"):
            b.start_ringlb("ringlb-buffers", "buffers")
        if wanted("ringlb-splice"):
            b.start_ringlb("ringlb-splice", "splice")
        if args.ringlb_auto:
            b.start_ringlb("ringlb-auto", "auto")
        if wanted("haproxy"):
            b.start_haproxy("haproxy")
        if args.haproxy_splice:
            b.start_haproxy("haproxy-splice", splice=True)
        if any(args.wanted_scenario(s) for s in tls.tls_scenarios()) or any(
                s.startswith("tls-") for s in (args.perf_scenarios if args.perf else [])):
            b.start_tls_sink()
            for alloc in allocs:
                suffix = "" if alloc == "glibc" else f"-{alloc}"
                # "--only haproxy-tls" means it under every allocator of --allocators.
                if wanted(f"haproxy-tls{suffix}") or wanted("haproxy-tls"):
                    b.start_haproxy_tls(f"haproxy-tls{suffix}", alloc)
                if wanted(f"ringlb-tls{suffix}") or wanted("ringlb-tls"):
                    b.start_ringlb_tls(f"ringlb-tls{suffix}", alloc)
        lbs, tls_lbs = list(b.lbs), list(b.tls_lbs)
        for lb in lbs:  # smoke test: each LB relays a correct exchange
            r = b.loadgen(b.lbs[lb][1], ["conn", "--concurrency", "1"], 0.2)
            if r["errors"] or not r["completed"]:
                raise RuntimeError(f"{lb} fails the smoke test: {r}\n{b.lbs[lb][0].output()}")
        for lb in tls_lbs:  # TLS smoke test: verified chain and name, resumption, both certificates
            for kind in ("ecdsa", "rsa"):
                r = b.loadgen(b.tls_lbs[lb][1][kind], ["resume", "--concurrency", "2", "--max-conns", "20",
                                                       "--ca", b.pki["public_ca"]], 2, "e2e_tls_loadgen")
                if r["errors"] or r["completed"] != 20 or not r["resumed"]:
                    raise RuntimeError(f"{lb} ({kind}) fails the TLS smoke test: {r}\n{b.tls_lbs[lb][0].output()}")
        print(f"work dir {b.work}; LBs on CPU {LB_CPU}: " +
              ", ".join(f"{lb} pid {p.pid} {a}" for lb, (p, a) in [*b.lbs.items(), *b.tls_lbs.items()]),
              file=sys.stderr)
        if tls_lbs and not args.no_floors:
            print("OpenSSL floors: openssl speed and bench_tls_handshake on CPU "
                  f"{LB_CPU} (the LBs are idle)...", file=sys.stderr, flush=True)
            speed = tls.openssl_speed(LB_CPU, 1)
            hs = tls.handshake_bench(f"{b.bin}/bench_tls_handshake", LB_CPU, 0.2 if args.quick else 1.0)
            out["openssl"] = {"speed": speed, "bench_tls_handshake": hs, "floors": tls.floors(speed, hs)}
        raw = b.run()
        agg = {scen: {lb: aggregate(runs) for lb, runs in per.items()} for scen, per in raw.items()}
        out.update({"lbs": lbs, "tls_lbs": tls_lbs, "skipped_lbs": b.skipped, "raw": raw, "aggregate": agg,
                    "discarded_noisy": b.discarded})
        pass_agg = {s: v for s, v in agg.items() if not s.startswith("tls-")}
        tls_agg = {s: v for s, v in agg.items() if s.startswith("tls-")}
        table = markdown(pass_agg, lbs) if pass_agg else ""
        verdict = relay_verdict(pass_agg)
        floors = out.get("openssl", {}).get("floors", {})
        tls_table = tls_markdown(tls_agg, tls_lbs, floors) if tls_agg else ""
        if args.perf:
            out["perf"] = b.profile(args.perf_scenarios, args.perf_seconds)
    finally:
        b.stop_all()
    out["sink"] = b.sink.output().strip().splitlines()[-1:] if b.sink else None
    out["sink_tls"] = b.tls_sink.output().strip().splitlines()[-1:] if b.tls_sink else None
    path = args.json or os.path.join(args.build_dir, "e2e-results.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=list)
    print(f"\n{out['machine']['cpu']}, {out['machine']['cpus']} CPUs, Linux {out['machine']['kernel']}; "
          f"{out['machine']['haproxy']}; mode {out['mode']}\n")
    print("Ratios are ringlb/HAProxy from this run: for CPU per unit lower is better, for rates higher.\n")
    if table:
        print(table)
    if verdict:
        print("\nRelay, buffers vs splice:\n" + verdict)
    if "openssl" in out:
        print("\n" + floors_markdown(out["openssl"]))
    if tls_table:
        print("\nTLS termination + re-encryption (ratios to haproxy-tls, glibc):\n")
        print(tls_table)
    for lb, why in b.skipped.items():
        print(f"\n{lb}: not run ({why[0] if why else '?'})")
    off = {f"{lb}/{s}": a["lb_threads_cpus"] for s, per in out.get("aggregate", {}).items() for lb, a in per.items()
           if any(set(c) - {LB_CPU} for c in a["lb_threads_cpus"].values())}
    if off:
        print(f"\nWARNING: LB threads ran outside CPU {LB_CPU}: {off}")
    if "perf" in out:
        print("\n" + perf_markdown(out["perf"]))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
