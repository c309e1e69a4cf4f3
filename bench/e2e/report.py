"""Reporting for bench/e2e/run.py: per-scenario aggregation, Markdown tables, and perf
profile summaries. Python stdlib only."""
import re
import shutil
import subprocess

LB_CPU, GEN_CPU = 0, 1  # the LBs run on CPU 0; load generator, sink and run.py on CPU 1
PERF = shutil.which("perf") or "/usr/bin/perf"


def noise(r):
    """Share of the phase that CPU 0 or CPU 1 spent on anything but our processes, plus
    hypervisor steal: 0 for a clean measurement."""
    phase = r["phase_s"]
    cpu0 = r["cpu_busy_s"][str(LB_CPU)] - r["lb_cpu_s"] + r["cpu_steal_s"][str(LB_CPU)]
    cpu1 = r["cpu_busy_s"][str(GEN_CPU)] - r["gen_cpu_s"] + r["cpu_steal_s"][str(GEN_CPU)]
    return max(cpu0, cpu1, 0.0) / phase


# ---------------------------------------------------------------------- perf summary

# Inclusive ("children") share of samples under these kernel functions answers "where does
# the LB's CPU go" better than leaf symbols: under cpu-clock in a VM, time with interrupts
# off is billed to the next _raw_spin_unlock_irqrestore / local_bh_enable, whatever its caller.
KEY_FUNCTIONS = [
    ("all syscalls", "entry_SYSCALL_64_after_hwframe"),
    ("io_uring_enter", "__do_sys_io_uring_enter"),
    ("epoll_wait", "do_epoll_wait"),
    ("io-wq worker (punted ops)", "io_wq_worker"),
    ("TCP recv (tcp_recvmsg)", "tcp_recvmsg"),
    ("TCP send (tcp_sendmsg)", "tcp_sendmsg"),
    ("splice socket->pipe", "tcp_splice_read"),
    ("splice pipe->socket", "splice_to_socket"),
    ("accept", "do_accept"),
    ("connect", "__inet_stream_connect"),
    ("close", "tcp_close"),
    ("shutdown", "tcp_shutdown"),
    ("IORING_OP_SHUTDOWN", "io_shutdown"),
    ("IORING_OP_SPLICE", "io_splice"),
    ("fd install/close (files)", "__fput"),
    ("softirq (loopback delivery, timers)", "handle_softirqs"),
    ("copy to user", "_copy_to_iter"),
    ("copy from user", "_copy_from_iter"),
    ("scheduler (schedule)", "schedule"),
    ("wake-ups (try_to_wake_up)", "try_to_wake_up"),
    ("timer interrupt", "asm_sysvec_apic_timer_interrupt"),
]


def perf_report(data, *extra):
    r = subprocess.run([PERF, "report", "-i", data, "--stdio", "-g", "none", *extra], capture_output=True,
                       timeout=600)
    return r.stdout.decode(errors="replace")


def perf_summary(data, top=20):
    """Self-time top symbols, inclusive time under KEY_FUNCTIONS, and time per dso/thread."""
    symbols = []
    for line in perf_report(data, "--no-children", "--sort", "dso,sym", "--percent-limit", "0.3").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.kgu]\]\s+(.*)$", line)
        if m:
            symbols.append((float(m.group(1)), m.group(2), m.group(3).strip()))
    inclusive = {}
    for line in perf_report(data, "--children", "--sort", "sym", "--percent-limit", "0.1").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.kgu]\]\s+(\S+)", line)
        if m:
            inclusive[m.group(3)] = float(m.group(1))
    key = [(label, fn, inclusive[fn]) for label, fn in KEY_FUNCTIONS if fn in inclusive]
    # Allocator share: self time in malloc/free and their helpers, whichever library has them.
    alloc = 0.0
    for line in perf_report(data, "--no-children", "--sort", "dso,sym", "--percent-limit", "0.01").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.kgu]\]\s+(\S+)", line)
        if m and (re.search(r"malloc|jemalloc|mimalloc|je_", m.group(2)) or
                  re.fullmatch(r"_?_?(libc_)?(malloc|free|cfree|calloc|realloc)|_int_(malloc|free|realloc)|"
                               r"malloc_consolidate|unlink_chunk.*|tcache_.*|sysmalloc|__default_morecore",
                               m.group(3))):
            alloc += float(m.group(1))
    dsos = re.findall(r"^\s*([\d.]+)%\s+(\S.*?)\s*$", perf_report(data, "--no-children", "--sort", "dso"), re.M)
    comms = re.findall(r"^\s*([\d.]+)%\s+(\S.*?)\s*$", perf_report(data, "--no-children", "--sort", "comm"), re.M)
    return {"top_self": symbols[:top], "inclusive": key, "allocator_self": alloc,
            "dso": [(float(p), n) for p, n in dsos], "threads": [(float(p), n) for p, n in comms]}


# ---------------------------------------------------------------------- reporting

def phase_metrics(r):
    """The per-unit numbers of one measured phase."""
    t = r["duration_s"]
    byts = r["bytes_up"] + r["bytes_down"]
    cpu = r["lb_cpu_s"]
    return {
        "conns_per_s": r["completed"] / t, "mb_per_s": byts / t / 1e6,
        "cpu_us_per_conn": cpu * 1e6 / r["completed"] if r["completed"] else None,
        "cpu_s_per_gb": cpu / (byts / 1e9) if byts else None,
        "lb_util": cpu / t, "gen_util": r["gen_cpu_s"] / t,
        # The peers' cost per unit: on loopback an LB can shift work onto them (e.g. splice
        # hands its page references through to the receiving socket, which then frees them).
        "gen_us_per_conn": r["gen_cpu_s"] * 1e6 / r["completed"] if r["completed"] else None,
        "gen_s_per_gb": r["gen_cpu_s"] / (byts / 1e9) if byts else None,
        "steal0": r["cpu_steal_s"][str(LB_CPU)] / r["phase_s"], "noise": noise(r),
        "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"],
        # TLS phases (e2e_tls_loadgen): share of the client's handshakes that resumed.
        "resumed_share": r["resumed"] / r["handshakes"] if r.get("handshakes") else None,
    }


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def aggregate(runs):
    """Median over rounds of each per-phase number (one phase hit by hypervisor steal or a
    neighbour's job does not move it), plus totals and the min..max spread."""
    per = [phase_metrics(r) for r in runs]
    a = {key: median(m[key] for m in per) for key in per[0]}
    a["spread"] = {key: [min(m[key] for m in per), max(m[key] for m in per)]
                   for key in ("conns_per_s", "mb_per_s", "cpu_us_per_conn", "cpu_s_per_gb")
                   if all(m[key] is not None for m in per)}
    if any(r.get("tls") for r in runs):  # TLS phases: what the client negotiated
        a["tls"] = sorted({r["tls"] for r in runs if r.get("tls")})
    a.update({"rounds": len(runs), "seconds": sum(r["duration_s"] for r in runs),
              "completed": sum(r["completed"] for r in runs), "errors": sum(r["errors"] for r in runs),
              "aborted": sum(r["aborted"] for r in runs),
              "bytes": sum(r["bytes_up"] + r["bytes_down"] for r in runs),
              "lb_cpu_s": sum(r["lb_cpu_s"] for r in runs), "lb_threads_cpus": {}})
    for r in runs:
        for comm, cpus in r["lb_threads_cpus"].items():
            a["lb_threads_cpus"][comm] = sorted(set(a["lb_threads_cpus"].get(comm, [])) | set(cpus))
    return a


def ratio(x, y):
    return x / y if x is not None and y else None


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 10 and digits:
        return f"{v:.{max(digits, 2)}f}"
    return f"{v:,.{digits}f}"


def markdown(agg, lbs, base="haproxy"):
    others = [lb for lb in lbs if lb != base] if base in lbs else []
    head = ["scenario", "metric", *lbs, *[f"{lb.replace('ringlb-', '')}/{base}" for lb in others]]
    rows = []
    for scen, per_lb in agg.items():
        metrics = [("conn/s", "conns_per_s", 0), ("LB CPU us/conn", "cpu_us_per_conn", 1),
                   ("gen+sink CPU us/conn", "gen_us_per_conn", 1)]
        if scen.startswith("bulk"):
            metrics = [("MB/s", "mb_per_s", 0), ("LB CPU s/GB", "cpu_s_per_gb", 3),
                       ("gen+sink CPU s/GB", "gen_s_per_gb", 3)]
        else:
            metrics += [("MB/s", "mb_per_s", 1), ("p99 latency us", "p99_us", 0)]
        metrics += [("LB CPU util", "lb_util", 2), ("gen+sink CPU util", "gen_util", 2),
                    ("noise (other load)", "noise", 2)]
        for label, key, digits in metrics:
            vals = [per_lb[lb][key] for lb in lbs]
            ratios = [ratio(per_lb[lb][key], per_lb[base][key]) if key != "noise" else None for lb in others]
            rows.append([scen, label, *[fmt(v, digits) for v in vals], *[fmt(r, 2) for r in ratios]])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def relay_verdict(agg):
    """Per scenario, which ringlb relay needs less LB CPU per unit of work, and by how much."""
    lines = []
    for scen, per_lb in agg.items():
        b, s = per_lb.get("ringlb-buffers"), per_lb.get("ringlb-splice")
        if not b or not s:
            continue
        bulk = scen.startswith("bulk")
        key, unit = ("cpu_s_per_gb", "CPU s/GB") if bulk else ("cpu_us_per_conn", "CPU us/conn")
        tkey = "mb_per_s" if bulk else "conns_per_s"
        lo, hi = sorted([b[key], s[key]])
        saving = 100 * (1 - lo / hi)
        if saving < 3:
            head = f"no clear winner (within {saving:.0f}%)"
        else:
            head = f"{'buffers' if b[key] <= s[key] else 'splice'} needs {saving:.0f}% less {unit}"
        lines.append(f"- {scen}: {head} (buffers {fmt(b[key], 3)}, splice {fmt(s[key], 3)}); "
                     f"throughput splice/buffers {s[tkey] / b[tkey]:.2f}")
    return "\n".join(lines)


def perf_markdown(profiles):
    out = []
    for key, p in profiles.items():
        out.append(f"#### {key}\n")
        out.append("By object: " + ", ".join(f"{n} {v:.1f}%" for v, n in p["dso"][:5]) + "; by thread: " +
                   ", ".join(f"{n} {v:.1f}%" for v, n in p["threads"][:5]) + "\n")
        out.append("Inclusive: " + ", ".join(f"{label} {v:.1f}%" for label, _, v in p["inclusive"]) + "\n")
        if "allocator_self" in p:
            out.append(f"Allocator (malloc/free and helpers, self): {p['allocator_self']:.1f}%\n")
        out.append("| self % | object | symbol |\n|---|---|---|")
        out += [f"| {pct:.2f} | {dso} | `{sym}` |" for pct, dso, sym in p["top_self"][:12]]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------- TLS termination

def tls_markdown(agg, lbs, floors, base="haproxy-tls"):
    """TLS phases: per LB, the rates, LB CPU per handshake (or per GB) and its ratio to
    HAProxy (glibc) from the same run, and how many times the OpenSSL floor that is."""
    others = [lb for lb in lbs if lb != base] if base in lbs else []
    head = ["scenario", "metric", *lbs, *[f"{lb}/{base}" for lb in others]]
    rows = []
    for scen, per_lb in agg.items():
        bulk = "bulk" in scen
        floor = (floors.get(scen) or {}).get("openssl")
        if bulk:
            metrics = [("MB/s", "mb_per_s", 0), ("LB CPU s/GB", "cpu_s_per_gb", 3),
                       ("gen+sink CPU s/GB", "gen_s_per_gb", 3)]
            unit = "cpu_s_per_gb"
        else:
            metrics = [("handshakes/s", "conns_per_s", 0), ("LB CPU us/handshake", "cpu_us_per_conn", 1),
                       ("gen+sink CPU us/handshake", "gen_us_per_conn", 1), ("client resumed share", "resumed_share", 2),
                       ("p99 latency us", "p99_us", 0)]
            unit = "cpu_us_per_conn"
        metrics += [("LB CPU util", "lb_util", 2), ("gen+sink CPU util", "gen_util", 2),
                    ("noise (other load)", "noise", 2)]
        for label, key, digits in metrics:
            vals = [per_lb[lb][key] for lb in lbs]
            ratios = [ratio(per_lb[lb][key], per_lb[base][key]) if key not in ("noise", "resumed_share") else None
                      for lb in others]
            rows.append([scen, label, *[fmt(v, digits) for v in vals], *[fmt(r, 2) for r in ratios]])
            if key == unit and floor:
                rows.append([scen, "LB CPU / OpenSSL floor", *[fmt(ratio(per_lb[lb][key], floor), 2) for lb in lbs],
                             *["-" for _ in others]])
        rows.append([scen, "negotiated", *[" / ".join(per_lb[lb].get("tls", [])) or "-" for lb in lbs],
                     *["" for _ in others]])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def floors_markdown(openssl):
    """The OpenSSL numbers measured on the LB's CPU, and the floors derived from them."""
    sp, hs, fl = openssl["speed"], openssl["bench_tls_handshake"], openssl["floors"]
    us = lambda per_s: fmt(1e6 / per_s, 1) if per_s else "-"
    gb = lambda bps: fmt(1e9 / bps, 3) if bps else "-"
    out = ["OpenSSL on the LB's CPU (`openssl speed`, 16 KiB buffers for the AEADs):", "",
           "| primitive | cost |", "|---|---|",
           f"| ECDSA P-256 sign / verify | {us(sp.get('ecdsap256_sign_per_s'))} / {us(sp.get('ecdsap256_verify_per_s'))} us |",
           f"| RSA-2048 sign / verify | {us(sp.get('rsa2048_sign_per_s'))} / {us(sp.get('rsa2048_verify_per_s'))} us |",
           f"| ECDH P-256 / X25519 (one derivation) | {us(sp.get('ecdhp256_per_s'))} / {us(sp.get('x25519_per_s'))} us |"]
    for c in ("aes-256-gcm", "aes-128-gcm", "chacha20-poly1305"):
        out.append(f"| {c} (one direction) | {gb(sp.get(f'{c}_bytes_per_s'))} s/GB |")
    out += ["", "In-memory handshakes and records (`bench_tls_handshake`, SSL_new..SSL_free, both sides):", "",
            "| benchmark | CPU total | server side | client side | throughput |", "|---|---|---|---|---|"]
    for name, b in hs.items():
        bps = b.get("bytes_per_s")
        out.append(f"| {name} | {fmt(b['cpu_us'], 1)} us | {fmt(b.get('server_us'), 1)} us | "
                   f"{fmt(b.get('client_us'), 1)} us | {(fmt(1e9 / bps, 3) + ' s/GB') if bps else '-'} |")
    out += ["", "Floor of a terminating, re-encrypting proxy (server side of the client's handshake + client "
            "side of a resumed backend handshake; per GB one encrypt + one decrypt), against the bare "
            "primitives:", "", "| phase | OpenSSL floor | primitives only |", "|---|---|---|"]
    for scen, f in fl.items():
        unit = " s/GB" if "bulk" in scen else " us"
        d = 3 if "bulk" in scen else 1
        out.append(f"| {scen} | {fmt(f.get('openssl'), d)}{unit} | {fmt(f.get('primitives'), d)}{unit} |")
    return "\n".join(out)
