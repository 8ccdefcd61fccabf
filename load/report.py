"""Markdown table and PNG plots from a load run's results (the dict run.py writes as JSON).

    /usr/bin/python3 load/report.py load/results/<date>/results.json   # re-render md + png
"""
from __future__ import annotations

import json
import os
import sys


NA = "n/a"   # a figure that could not be measured: the reason is in "Not measured"


def _fmt_num(v, digits=0):
    if v is None:
        return NA
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _fmt_pct(v):
    return NA if v is None else f"{v:.0%}"


def _fmt_ms(us):
    return NA if us is None else f"{us / 1000:.2f}"


def _fmt_ratio(x):
    return f"×{x:.2f}" if x >= 0.1 else f"×{x:.3f}" if x >= 0.001 else f"×{x:.1e}"


def _fmt_bytes(b):
    if b is None:
        return NA
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{b:.0f} B"
        b /= 1024


FIGURES = {"server_cpu_s": "server CPU s", "rps_per_server_cpu_s": "req/CPU-s", "peak_rss_kb": "peak RSS",
           "foreign_cpu_share": "other", "latency_us": "latency percentiles"}


def _index(data):
    rows = {}
    for r in data["results"]:
        rows[(r["scenario"], r["impl"])] = r
    impls = data["meta"]["impls"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in data["results"]))
    return rows, impls, scenarios


def _ratio(r, base, key="value", lower_is_better=False):
    if not r or not base or r.get("status") != "ok" or base.get("status") != "ok":
        return None
    a, b = r.get(key), base.get(key)
    if not a or not b:
        return None
    return b / a if lower_is_better else a / b


def _cpus(cpus):
    return ",".join(map(str, cpus)) if cpus else "?"


def _pinned(info_or_row) -> str:
    p = info_or_row.get("pinned")
    if p is None:
        why = info_or_row.get("not_pinned")
        return f"not pinned ({why})" if why else "not pinned"
    text = f"CPU {_cpus(p['cpus'])}: pid {', '.join(map(str, p['pids'])) or 'none'}"
    if p.get("failed"):
        text += f"; NOT pinned: {', '.join(p['failed'])}"
    return text


def implementations(meta) -> list[str]:
    """The Implementations section: version, description, how it ran, what was pinned."""
    infos = meta.get("implementations")
    if not infos:
        return []
    out = ["## Implementations", "",
           "| impl | version | description | server | workers | pinned (process tree) |",
           "|---|---|---|---|---|---|"]
    for name in meta["impls"]:
        i = infos.get(name, {})
        if i.get("kind") == "url":
            server = f"--url {i.get('url')}" + (f", pid {i['pid']}" if i.get("pid") else ", no PID")
            if i.get("affinity_restored") is not None:
                server += (f"; affinity restored to CPU {_cpus(i.get('affinity_after'))}"
                           if i["affinity_restored"] else "; affinity NOT fully restored")
            if i.get("pid_note"):
                server += f" ({i['pid_note']})"
        else:
            server = f"started, pid {i['pid']}" if i.get("pid") else "started per scenario (TLS instances)"
        workers = i.get("workers")
        workers = f"{workers} ({i.get('workers_note', '')})" if workers else f"{NA} ({i.get('workers_note', '')})"
        pinned = _pinned(i) if "pinned" in i or "not_pinned" in i else "per scenario (Details)"
        out.append(f"| {name} | {i.get('version', '?')} | `{i.get('description', '?')}` | {server} | "
                   f"{workers} | {pinned} |")
    engines = meta.get("engines") or {}
    out += ["", "Figures and their engines: " + "; ".join(f"**{k}**: {v}" for k, v in engines.items()) + ".", ""]
    return out


def markdown(data) -> str:
    meta = data["meta"]
    rows, impls, scenarios = _index(data)
    base = meta["baseline"]
    described = bool(meta.get("implementations"))
    pinning = ("wrk pinned to CPU " + _cpus(meta["client_cpus"]) + " (taskset); each server's process tree "
               "to CPU " + _cpus(meta["server_cpus"]) + " only where its PID is known (see Implementations)"
               if described else
               f"server pinned to CPU {_cpus(meta['server_cpus'])}, wrk to CPU {_cpus(meta['client_cpus'])}")
    out = [f"# Squall load run {meta['date']}", "",
           f"CPU: {meta['cpu_model']} ({meta['cpus']} CPUs); {pinning}; {meta['duration_s']:g} s per run, "
           f"median of {meta['repeat']}; {meta['connections']} connections unless stated; "
           f"{meta['threads']} wrk thread(s); "
           + ("" if described else f"{meta['workers']} server worker(s); ")
           + f"{meta['wrk']}.", "",
           f"Ratios are to **{base}** (×1.00); for memory, lower KiB per connection is "
           f"better and the ratio is baseline/impl (so >1 is better everywhere). "
           f"**C** = client-bound (wrk's core ≥ 90% busy: the server may be faster than "
           f"shown; compare req per server-CPU-second). **FAILED** = socket errors or "
           f"non-2xx responses. **n/a** = not measured, with the reason below the tables.", "",
           f"Load average at start / end: {(meta.get('loadavg_start') or [0])[0]:.1f} / "
           f"{(meta.get('loadavg_end') or [0])[0]:.1f} on {meta['cpus']} CPUs; \"other\" in Details is the "
           f"share of the server's and wrk's cores that other processes used "
           f"during the run (noise).", "",
           *implementations(meta),
           "## Throughput (requests/s; memory: KiB per idle connection)", "",
           "| scenario | " + " | ".join(impls) + " |",
           "|---|" + "---:|" * len(impls)]
    for sc in scenarios:
        cells = []
        for impl in impls:
            r = rows.get((sc, impl))
            if r is None:
                cells.append("–")
                continue
            if r["status"] == "n/a":
                cells.append("n/a")
                continue
            if r["status"] == "FAILED" and r.get("value") is None:
                cells.append("**FAILED**")
                continue
            lower = sc == "memory"
            ratio = _ratio(r, rows.get((sc, base)), lower_is_better=lower)
            txt = _fmt_num(r["value"], 1 if lower else 0)
            if ratio is not None:
                txt += f" ({_fmt_ratio(ratio)})"
            if r.get("client_bound"):
                txt += " C"
            if r["status"] == "FAILED":
                txt = f"**FAILED** {txt}"
            cells.append(txt)
        out.append(f"| {sc} | " + " | ".join(cells) + " |")

    out += ["", "## Efficiency (requests per second of server CPU time)", "",
            "| scenario | " + " | ".join(impls) + " |", "|---|" + "---:|" * len(impls)]
    for sc in scenarios:
        if sc == "memory":
            continue
        cells = []
        for impl in impls:
            r = rows.get((sc, impl))
            if not r or r["status"] == "n/a" or r.get("rps_per_server_cpu_s") is None:
                cells.append(NA if r and (r["status"] == "n/a" or "requests" in r) else "–")
                continue
            ratio = _ratio(r, rows.get((sc, base)), key="rps_per_server_cpu_s")
            cells.append(_fmt_num(r["rps_per_server_cpu_s"])
                         + (f" ({_fmt_ratio(ratio)})" if ratio is not None else ""))
        out.append(f"| {sc} | " + " | ".join(cells) + " |")

    out += ["", "## Details", "",
            "| scenario | impl | status | conns | req/s | transfer/s | p50 ms | p90 ms | p99 ms "
            "| p99.9 ms | server CPU s | req/CPU-s | peak RSS | wrk CPU | other | errors (c/r/w/t) | non-2xx |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for sc in scenarios:
        for impl in impls:
            r = rows.get((sc, impl))
            if not r:
                continue
            if r["status"] == "n/a" or (r["status"] == "FAILED" and "requests" not in r
                                        and "rss_per_connection_kb" not in r):
                out.append(f"| {sc} | {impl} | {r['status']} | | | | | | | | | | | | | "
                           f"{r.get('reason', '')} | |")
                continue
            if sc == "memory":
                out.append(f"| {sc} | {impl} | {r['status']} | {r['opened']}/{r['connections']} "
                           f"| | | | | | | | | {_fmt_bytes(r['peak_rss_kb'] * 1024)} | | | "
                           f"RSS {_fmt_bytes(r['rss_before_kb'] * 1024)} → "
                           f"{_fmt_bytes(r['rss_held_kb'] * 1024)}: "
                           f"{r['rss_per_connection_kb']} KiB/conn | |")
                continue
            lat = r.get("latency_us") or {}
            e = r["errors"]
            out.append(
                f"| {sc} | {impl} | {'**FAILED**' if r['status'] == 'FAILED' else 'ok'} "
                f"| {r['connections']} | {_fmt_num(r['rps'])} "
                f"| {_fmt_bytes(r['transfer_bytes_per_s'])} "
                f"| {_fmt_ms(lat.get('p50'))} | {_fmt_ms(lat.get('p90'))} "
                f"| {_fmt_ms(lat.get('p99'))} | {_fmt_ms(lat.get('p99.9'))} "
                f"| {_fmt_num(r.get('server_cpu_s'), 2)} | {_fmt_num(r.get('rps_per_server_cpu_s'))} "
                f"| {_fmt_bytes(r['peak_rss_kb'] * 1024) if r.get('peak_rss_kb') is not None else NA} "
                f"| {r['client_cpu_util']:.0%}{' C' if r['client_bound'] else ''} "
                f"| {_fmt_pct(r.get('foreign_cpu_share'))} "
                f"| {e['connect']}/{e['read']}/{e['write']}/{e['timeout']} | {e['status']} |")
    failed = [r for r in data["results"] if r["status"] == "FAILED"]
    if failed:
        out += ["", "## FAILED", ""]
        out += [f"- **{r['impl']} / {r['scenario']}**: {r.get('reason', '')}" for r in failed]
    na = [r for r in data["results"] if r["status"] == "n/a"]
    if na:
        out += ["", "## Not applicable", ""]
        out += [f"- {r['impl']} / {r['scenario']}: {r.get('reason', '')}" for r in na]
    unmeasured = {}   # (impl, reason) -> (figures, scenarios), in first-seen order
    for r in data["results"]:
        for fig, why in (r.get("unmeasured") or {}).items():
            figs, scs = unmeasured.setdefault((r["impl"], why), ({}, {}))
            figs[FIGURES.get(fig, fig)] = scs[r["scenario"]] = None
    if unmeasured:
        out += ["", "## Not measured (n/a figures)", ""]
        for (impl, why), (figs, scs) in unmeasured.items():
            out.append(f"- {impl}: {', '.join(figs)} ({', '.join(scs)}): {why}")
    pins = [r for r in data["results"] if r.get("instance")]
    if pins:
        out += ["", "## Instances started per scenario", ""]
        out += [f"- {r['impl']} / {r['scenario']}: {r['instance']}, {_pinned(r)}" for r in pins]
    out.append("")
    return "\n".join(out)


def plots(data, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, impls, scenarios = _index(data)
    colors = {impl: plt.cm.tab10(i) for i, impl in enumerate(impls)}
    written = []

    # Throughput: one small panel per scenario (their scales differ by 1000x).
    n = len(scenarios)
    cols = min(5, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols, 2.6 * nrows), squeeze=False)
    for ax, sc in zip(axes.flat, scenarios):
        vals, labels, cs, hatches = [], [], [], []
        for impl in impls:
            r = rows.get((sc, impl))
            ok = r and r["status"] != "n/a" and r.get("value") is not None
            vals.append(r["value"] if ok else 0)
            labels.append(impl)
            cs.append(colors[impl])
            hatches.append("//" if ok and (r["status"] == "FAILED" or r.get("client_bound")) else "")
        bars = ax.bar(range(len(impls)), vals, color=cs)
        for b, h in zip(bars, hatches):
            b.set_hatch(h)
        for x, impl in enumerate(impls):
            r = rows.get((sc, impl))
            if r is None or r["status"] == "n/a" or r.get("value") is None:
                ax.text(x, 0, "n/a" if r and r["status"] == "n/a" else "FAILED",
                        ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_title(sc, fontsize=9)
        ax.set_xticks(range(len(impls)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("KiB / idle conn" if sc == "memory" else "req/s", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"Throughput per scenario ({data['meta']['cpu_model']}; hatched = client-bound "
                 f"or failed)", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, "throughput.png")
    fig.savefig(path, dpi=72)
    plt.close(fig)
    written.append(path)

    # Latency percentiles: per scenario, p50/p90/p99/p99.9 per impl, log scale.
    lat_scen = [sc for sc in scenarios
                if any((rows.get((sc, i)) or {}).get("latency_us") for i in impls)]
    if lat_scen:
        pcts = ["p50", "p90", "p99", "p99.9"]
        cols = min(3, len(lat_scen))
        nrows = (len(lat_scen) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(4.0 * cols, 2.6 * nrows), squeeze=False)
        for ax, sc in zip(axes.flat, lat_scen):
            for impl in impls:
                lat = (rows.get((sc, impl)) or {}).get("latency_us")
                if lat:
                    ax.plot(pcts, [max(lat[p], 1) / 1000 for p in pcts], marker="o",
                            color=colors[impl], label=impl)
            ax.set_yscale("log")
            ax.set_title(sc, fontsize=9)
            ax.set_ylabel("ms", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(lat_scen):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle("Latency percentiles (ms, log scale)", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path, dpi=72)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    src = sys.argv[1]
    with open(src) as f:
        data = json.load(f)
    out_dir = os.path.dirname(os.path.abspath(src))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown(data))
    print("\n".join(plots(data, out_dir)))
