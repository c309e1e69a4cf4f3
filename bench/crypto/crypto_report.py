"""Results of bench/crypto/run.py: one JSON record per cell, the Markdown table, and the PNG
plots (matplotlib, optional). Python stdlib + matplotlib."""
import dataclasses
import os

from report import fmt  # bench/e2e/report.py


def cell_record(cell, phases, limit, status="ok"):
    """The record of one cell: its inputs, status, and what its phases measured.
    PHASES: name -> the load generator's report + measure_phase's fields ({} if not run);
    LIMIT: (one-core limit per second, what it counts) from matrix.limit."""
    lim, lim_what = limit
    rec = {"id": cell.id, **dataclasses.asdict(cell), "status": status, "limit_per_s": lim,
           "limit_counts": lim_what, "phases": phases}
    if not phases:
        return rec
    ps = list(phases.values())
    secs = sum(p["duration_s"] for p in ps)
    cpu = sum(p["lb_cpu_s"] for p in ps)
    rec.update({"errors": sum(p["errors"] for p in ps), "negotiated": sorted({p.get("tls", "") for p in ps}),
                "lb_cpu_s": cpu, "lb_util": cpu / secs if secs else None,
                "noise": max(p["noise"] for p in ps),
                "steal_s": sum(sum(p["cpu_steal_s"].values()) for p in ps)})
    if cell.workload == "bulk":
        byts = sum(p["bytes_up"] + p["bytes_down"] for p in ps)
        per_gb = lambda p: p["lb_cpu_s"] / ((p["bytes_up"] + p["bytes_down"]) / 1e9) if p["bytes_up"] + p[
            "bytes_down"] else None
        rec.update({"up_mb_per_s": phases["up"]["up_mb_per_s"], "down_mb_per_s": phases["down"]["down_mb_per_s"],
                    "mb_per_s": byts / secs / 1e6 if secs else None, "bytes": byts,
                    "lb_cpu_s_per_gb": cpu / (byts / 1e9) if byts else None,
                    "lb_cpu_s_per_gb_up": per_gb(phases["up"]), "lb_cpu_s_per_gb_down": per_gb(phases["down"])})
        rate, cpu_per_unit = (byts / secs if secs else None), (cpu / byts if byts else None)
    else:
        p = ps[0]
        done = p["completed"]
        rec.update({"handshakes_per_s": done / secs if secs else None, "completed": done,
                    "lb_cpu_us_per_handshake": cpu * 1e6 / done if done else None,
                    "handshake_us": p.get("handshake_us"), "connection_us": p.get("latency_us"),
                    "resumed_share": p["resumed"] / p["handshakes"] if p.get("handshakes") else None})
        rate, cpu_per_unit = rec["handshakes_per_s"], (cpu / done if done else None)
    if lim and rate:
        # How close the measured rate came to one core doing nothing but the primitives, and
        # what share of the LB's own CPU per unit those primitives are.
        rec["fraction_of_limit"] = rate / lim
        rec["primitive_share_of_lb_cpu"] = (1 / lim) / cpu_per_unit if cpu_per_unit else None
    if status == "ok" and not rate:
        rec["status"] = "error: nothing completed"
    return rec


def summary(rec):
    """One progress-line summary of a record."""
    if not rec.get("phases"):
        return rec["status"]
    if rec["workload"] == "bulk":
        s = (f"{fmt(rec['up_mb_per_s'], 0)} MB/s up {fmt(rec['down_mb_per_s'], 0)} down, "
             f"LB {fmt(rec['lb_cpu_s_per_gb'], 3)} s/GB")
    else:
        s = (f"{fmt(rec['handshakes_per_s'], 0)} hs/s, LB {fmt(rec['lb_cpu_us_per_handshake'], 0)} us/hs, "
             f"p99 {rec['handshake_us']['p99'] if rec.get('handshake_us') else '-'} us")
    return f"{s}, noise {rec['noise']:.2f}, err {rec['errors']}" + ("" if rec["status"] == "ok" else f" [{rec['status']}]")


# ---------------------------------------------------------------------- Markdown

COLUMNS = ["LB", "workload", "key", "TLS", "cipher", "back-end", "mode", "handshakes/s",
           "handshake p50 / p90 / p99 µs", "resumed", "MB/s up / down", "LB CPU µs/handshake", "LB CPU s/GB",
           "1-core limit", "of limit", "primitives / LB CPU", "noise", "status"]


def _row(r):
    hs = r.get("handshake_us")
    limit = r.get("limit_per_s")
    unit = " MB/s" if r["workload"] == "bulk" else "/s"
    lim = f"{fmt(limit / 1e6 if r['workload'] == 'bulk' else limit, 0)}{unit}" if limit else "-"
    pct = lambda v: f"{100 * v:.0f}%" if v is not None else "-"
    status = r["status"] if len(r["status"]) < 90 else r["status"][:87] + "..."
    return [r["lb"], r["workload"], r["key"] if r["workload"] != "bulk" else "(ecdsa-p256)", r["tls"],
            r["cipher"] if r["workload"] == "bulk" else f"({r['cipher']})", r["backend"], r["mode"],
            fmt(r.get("handshakes_per_s"), 0), f"{hs['p50']} / {hs['p90']} / {hs['p99']}" if hs else "-",
            pct(r.get("resumed_share")),
            f"{fmt(r['up_mb_per_s'], 0)} / {fmt(r['down_mb_per_s'], 0)}" if "up_mb_per_s" in r else "-",
            fmt(r.get("lb_cpu_us_per_handshake"), 0), fmt(r.get("lb_cpu_s_per_gb"), 3), lim,
            pct(r.get("fraction_of_limit")), pct(r.get("primitive_share_of_lb_cpu")),
            f"{r['noise']:.2f}" if "noise" in r else "-", status.replace("|", "/")]


def speed_markdown(speed, rates):
    rows = [f"| openssl speed on CPU 0 ({rates}) | default | without AES-NI |", "|---|---|---|"]
    keys = sorted({k for s in speed.values() for k in s})
    for k in keys:
        val = lambda s: (f"{s[k] / 1e6:,.0f} MB/s" if k.endswith("bytes_per_s") else f"{s[k]:,.0f}/s") if k in s else "-"
        rows.append(f"| {k.replace('_bytes_per_s', '').replace('_per_s', '')} | {val(speed.get('default', {}))} | "
                    f"{val(speed.get('no-aesni', {}))} |")
    return "\n".join(rows)


def markdown(out):
    m, nz = out["machine"], out["noise"]
    head = [f"Crypto matrix ({out['mode']}), {out['started']} to {out['finished']} ({out['wall_s']} s): "
            f"{m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}.",
            "",
            f"Noise: steal {nz['steal_s']} s per CPU over the run; load average {nz['loadavg_before'][0]:.2f} before, "
            f"{nz['loadavg_after'][0]:.2f} after; phase noise median {fmt(nz['cell_noise_median'], 2)}, "
            f"max {fmt(nz['cell_noise_max'], 2)}; {nz['phases_noisier_than_0.1']} of {nz['phases']} phases "
            f"above 0.10.",
            "",
            "Back-ends: " + ", ".join(f"{k}: {v}" for k, v in out["backends"].items()) + ".",
            "", speed_markdown(out.get("openssl_speed", {}), out["settings"]["openssl_speed_rates"]), ""]
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    rows += ["| " + " | ".join(_row(r)) + " |" for r in out["cells"]]
    return "\n".join(head + rows) + "\n"


# ---------------------------------------------------------------------- plots

def _bars(ax, records, group_of, value, ylabel):
    """Grouped bars: one group per group_of(record), one bar per LB/mode/back-end."""
    groups = list(dict.fromkeys(group_of(r) for r in records))
    series = list(dict.fromkeys((r["lb"], r["mode"], r["backend"]) for r in records))
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        ys = []
        for g in groups:
            match = [r for r in records if group_of(r) == g and (r["lb"], r["mode"], r["backend"]) == s]
            ys.append(value(match[0]) if match and value(match[0]) is not None else 0)
        ax.bar([x + i * width for x in range(len(groups))], ys, width,
               label=f"{s[0] + ' ' if s[0] != 'ringlb' else ''}{s[1]}, {s[2]}")
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(groups))])
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def _figure(plt, path, title, records, group_of, panels):
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4 * len(panels)), squeeze=False)
    for ax, (value, ylabel) in zip(axes[:, 0], panels):
        if records:
            _bars(ax, records, group_of, value, ylabel)
        else:
            ax.text(0.5, 0.5, "no measured cells", ha="center", va="center", transform=ax.transAxes)
    if records:
        axes[0, 0].legend(fontsize=7, ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plots(records, out_dir):
    """handshakes.png (per key type and TLS version: handshakes/s and LB CPU per handshake)
    and bulk.png (per cipher and TLS version: MB/s and LB CPU per GB), bars per mode and
    back-end. Returns {"files": [...]} or {"skipped": why}."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {"skipped": "matplotlib not installed (apt python3-matplotlib)"}
    ok = [r for r in records if r["status"] == "ok"]
    hs = [r for r in ok if r["workload"] != "bulk"]
    bulk = [r for r in ok if r["workload"] == "bulk"]
    hs_group = lambda r: f"{r['key']} TLS{r['tls']}{' resumed' if r['workload'] == 'resume' else ''}"
    _figure(plt, os.path.join(out_dir, "handshakes.png"), "Handshakes through the LB (LB on one core)", hs,
            hs_group, [(lambda r: r.get("handshakes_per_s"), "handshakes/s"),
                       (lambda r: r.get("lb_cpu_us_per_handshake"), "LB CPU µs per handshake")])
    _figure(plt, os.path.join(out_dir, "bulk.png"), "Bulk transfer through the LB (4 streams, LB on one core)", bulk,
            lambda r: f"{r['cipher']} TLS{r['tls']}",
            [(lambda r: r.get("mb_per_s"), "MB/s (up and down phases)"),
             (lambda r: r.get("lb_cpu_s_per_gb"), "LB CPU s per GB")])
    return {"files": ["handshakes.png", "bulk.png"]}
