"""Markdown table and PNG plots from a load run's results (the dict run.py writes as JSON).

    /usr/bin/python3 load/report.py load/results/<date>/results.json   # re-render md + png
    /usr/bin/python3 load/report.py results.json --p99-threshold-ms 5  # curves: another threshold

Every row names the engine of its figures (wrk, squall-load, locust, idle_connections.py);
a --curve run adds the latency-against-throughput table (where each implementation's p99
crosses the threshold) and curves.png.
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


def _scenario_table(title: str, intro: list[str], rows: dict, scenarios: list[str], impls: list[str],
                    cell) -> list[str]:
    """A section with a table of scenario × implementation, the memory scenario left out;
    cell(row or None) gives each cell's text."""
    out = ["", f"## {title}", "", *intro, "| scenario | " + " | ".join(impls) + " |",
           "|---|" + "---:|" * len(impls)]
    for sc in scenarios:
        if sc != "memory":
            out.append(f"| {sc} | " + " | ".join(cell(rows.get((sc, impl))) for impl in impls) + " |")
    return out


FIGURES = {"server_cpu_s": "server CPU s", "rps_per_server_cpu_s": "req/CPU-s", "peak_rss_kb": "peak RSS",
           "foreign_cpu_share": "other", "latency_us": "latency percentiles", "transfer_bytes_per_s": "transfer/s"}


def engine_text(meta) -> str:
    """What generated the load, for the report's first lines."""
    engine = meta.get("engine") or "wrk"
    if engine == "wrk":
        return f"{meta['threads']} wrk thread(s); {meta['wrk']} (closed loop)"
    if engine == "squall-load":
        rate = meta.get("rate")
        mode = (f"open loop at {rate:,.0f} req/s (latency from each request's intended start)" if rate
                else "closed loop (latency from each request's write)")
        return f"engine squall-load, {mode}; a latency per response"
    loc = meta.get("locust") or {}
    return (f"engine Locust, {loc.get('workers', '?')} local worker(s)"
            + (f" + {loc['remote_workers']} remote" if loc.get("remote_workers") else "")
            + ", closed loop; latencies are Locust's (ms, rounded)")


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


def _ratio_cell(fig) -> str:
    """The median of per-round ratios, with the range of the rounds beside it."""
    measured = [x for x in fig["per_round"] if x is not None]
    if fig["median"] is None or not measured:
        return NA
    return f"{_fmt_ratio(fig['median'])} ({_fmt_ratio(min(measured))[1:]}–{_fmt_ratio(max(measured))[1:]})"


def interleaved_ratios(data) -> list[str]:
    """The section of an interleaved run: per scenario and implementation, the median over
    rounds of its ratio to the baseline in the same round (interleave.py)."""
    entries = data.get("interleaved_ratios")
    if not entries:
        return []
    out = ["## Ratios from interleaved rounds (median of per-round ratios)", "",
           f"Each round ran every implementation once, back to back, in an order rotating from round to "
           f"round; each round gives a ratio to **{entries[0]['baseline']}**, and the median over the rounds "
           f"is shown, with the rounds' range. Drift of the machine hits every implementation of a round "
           f"alike: these are the ratios to quote, rather than those of the medians below.", "",
           f"p99: the latency's 99th percentile, as {entries[0]['baseline']}'s ÷ the implementation's "
           f"in the same round, so that here too > 1 is better for the implementation.", "",
           "\"other\": the share of the two cores other processes took during a round's runs (the "
           "rounds' range); well above a few percent, rerun when the machine is quieter.", "",
           "| scenario | impl | rounds | req/s | req/CPU-s | p99 | other |", "|---|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        other = [x for x in e.get("other_load") or () if x is not None]
        p99 = _ratio_cell(e["p99"]) if e.get("p99") else NA  # results written before p99 was compared
        out.append(f"| {e['scenario']} | {e['impl']} | {e['rounds']} | {_ratio_cell(e['rps'])} "
                   f"| {_ratio_cell(e['rps_per_server_cpu_s'])} | {p99} "
                   f"| {f'{min(other):.0%}–{max(other):.0%}' if other else NA} |")
    return out + [""]


def markdown(data) -> str:
    meta = data["meta"]
    rows, impls, scenarios = _index(data)
    base = meta["baseline"]
    described = bool(meta.get("implementations"))
    pinning = (f"{meta.get('engine') or 'wrk'} pinned to CPU " + _cpus(meta["client_cpus"])
               + " (taskset); each server's process tree "
               "to CPU " + _cpus(meta["server_cpus"]) + " only where its PID is known (see Implementations)"
               if described else
               f"server pinned to CPU {_cpus(meta['server_cpus'])}, {meta.get('engine') or 'wrk'} to CPU "
               f"{_cpus(meta['client_cpus'])}")
    out = [f"# Squall load run {meta['date']}", "",
           f"CPU: {meta['cpu_model']} ({meta['cpus']} CPUs); {pinning}; {meta['duration_s']:g} s per run, "
           f"median of {meta['repeat']}{' (interleaved rounds)' if meta.get('interleave') else ''}; {meta['connections']} connections unless stated; "
           + ("" if described else f"{meta['workers']} server worker(s); ")
           + f"{engine_text(meta)}.", "",
           f"Ratios are to **{base}** (×1.00); for memory, lower KiB per connection is "
           f"better and the ratio is baseline/impl (so >1 is better everywhere). "
           f"**C** = client-bound (the load engine's core ≥ 90% busy: the server may be faster than "
           f"shown; compare req per server-CPU-second). **FAILED** = socket errors or "
           f"non-2xx responses. **n/a** = not measured, with the reason below the tables.", "",
           f"Load average at start / end: {(meta.get('loadavg_start') or [0])[0]:.1f} / "
           f"{(meta.get('loadavg_end') or [0])[0]:.1f} on {meta['cpus']} CPUs; \"other\" in Details is the "
           f"share of the server's and wrk's cores that other processes used "
           f"during the run (noise).", "",
           *implementations(meta),
           *interleaved_ratios(data),
           f"## Throughput (requests/s, {meta.get('engine') or 'wrk'}; memory: KiB per idle connection)", "",
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

    def efficiency(r):
        if not r or r["status"] == "n/a" or r.get("rps_per_server_cpu_s") is None:
            return NA if r and (r["status"] == "n/a" or "requests" in r) else "–"
        ratio = _ratio(r, rows.get((r["scenario"], base)), key="rps_per_server_cpu_s")
        return _fmt_num(r["rps_per_server_cpu_s"]) + (f" ({_fmt_ratio(ratio)})" if ratio is not None else "")

    def cpu_split(r):
        user, kernel = (r or {}).get("server_user_us_per_request"), (r or {}).get("server_kernel_us_per_request")
        return NA if user is None or kernel is None else f"{user:.2f} + {kernel:.2f}"

    out += _scenario_table("Efficiency (requests per second of server CPU time)", [], rows, scenarios, impls,
                           efficiency)
    out += _scenario_table("CPU per request (server user + kernel µs, /proc utime and stime)",
                           ["User is the server's own code; kernel is its system calls, TCP and the loopback's "
                            "delivery done on its CPU. /proc counts in 10 ms ticks: short runs are coarse.", ""],
                           rows, scenarios, impls, cpu_split)

    out += ["", "## Details", "",
            "Engine: who produced the row's figures (req/s, latency, errors; server CPU and RSS are "
            "read from /proc). Client CPU: the engine's CPU time / wall time.", "",
            "| scenario | impl | engine | status | conns | req/s | transfer/s | p50 ms | p90 ms | p99 ms "
            "| p99.9 ms | p99.99 ms | server CPU s | req/CPU-s | peak RSS | client CPU | other | errors (c/r/w/t) "
            "| non-2xx |",
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for sc in scenarios:
        for impl in impls:
            r = rows.get((sc, impl))
            if not r:
                continue
            if r["status"] == "n/a" or (r["status"] == "FAILED" and "requests" not in r
                                        and "rss_per_connection_kb" not in r):
                out.append(f"| {sc} | {impl} | | {r['status']} | | | | | | | | | | | | | | "
                           f"{r.get('reason', '')} | |")
                continue
            if sc == "memory":
                out.append(f"| {sc} | {impl} | {r.get('engine', '')} | {r['status']} | "
                           f"{r['opened']}/{r['connections']} "
                           f"| | | | | | | | | | {_fmt_bytes(r['peak_rss_kb'] * 1024)} | | | "
                           f"RSS {_fmt_bytes(r['rss_before_kb'] * 1024)} → "
                           f"{_fmt_bytes(r['rss_held_kb'] * 1024)}: "
                           f"{r['rss_per_connection_kb']} KiB/conn | |")
                continue
            lat = r.get("latency_us") or {}
            e = r["errors"]
            engine = r.get("engine", "wrk")
            if r.get("offered_rate"):
                engine += f" (open loop, {r['offered_rate']:,.0f} req/s offered)"
            out.append(
                f"| {sc} | {impl} | {engine} | {'**FAILED**' if r['status'] == 'FAILED' else 'ok'} "
                f"| {r['connections']} | {_fmt_num(r['rps'])} "
                f"| {_fmt_bytes(r.get('transfer_bytes_per_s'))} "
                f"| {_fmt_ms(lat.get('p50'))} | {_fmt_ms(lat.get('p90'))} "
                f"| {_fmt_ms(lat.get('p99'))} | {_fmt_ms(lat.get('p99.9'))} | {_fmt_ms(lat.get('p99.99'))} "
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
    if any(r.get("curve") for r in data["results"]):
        out += ["", *curve_markdown(data)]
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- curves

def _p(point, key="p99"):
    lat = point.get("latency_us") or {}
    return lat.get(key)


def crossing(curve: dict, threshold_ms: float) -> dict:
    """Where p99 crosses threshold_ms for good along the sweep (by offered rate): `below`,
    the last step whose p99 stayed at or below it (None: none did), `above`, the step after
    it (None: never crossed within the sweep), `at`, the achieved rate at the crossing
    interpolated linearly between the two, and `excursions`, steps below `below` that went
    above anyway (on a noisy machine, a stall of the machine's). A step with errors or no
    latency counts as above."""
    pts = sorted(curve["points"], key=lambda p: p["offered_rate"])
    limit = threshold_ms * 1000

    def over(p):
        return bool(p.get("failed") or _p(p) is None or _p(p) > limit or any((p.get("errors") or {}).values()))

    last = max((i for i, p in enumerate(pts) if not over(p)), default=None)
    if last is None:
        return {"below": None, "above": pts[0] if pts else None, "at": None, "excursions": []}
    below = pts[last]
    above = pts[last + 1] if last + 1 < len(pts) else None
    at = None
    if above is not None and _p(above) is not None and _p(above) > _p(below):
        f = (limit - _p(below)) / (_p(above) - _p(below))
        at = below["achieved_rate"] + f * ((above.get("achieved_rate") or above["offered_rate"]) - below["achieved_rate"])
    return {"below": below, "above": above, "at": at, "excursions": [p for p in pts[:last] if over(p)]}


def curve_markdown(data, threshold_ms: float | None = None) -> list[str]:
    meta = data["meta"]
    cfg = meta.get("curve") or {}
    threshold = threshold_ms if threshold_ms is not None else cfg.get("p99_threshold_ms", 10)
    rows = [r for r in data["results"] if r.get("curve")]
    out = ["## Latency against throughput (squall-load, open loop)", "",
           f"Per implementation and scenario: the closed-loop maximum ({', '.join(sorted({r['engine'] for r in rows}))}, "
           f"the Throughput table), then squall-load at a constant rate of "
           f"{', '.join(f'{s:g}' for s in cfg.get('steps_percent', []))} % of it, "
           f"{meta['duration_s']:g} s each after {cfg.get('warmup_s', 0):g} s at that rate, "
           f"{meta.get('repeat', 1)} run(s) per step (the run with the median p99 stands for it; all are in "
           f"the JSON); latency is measured "
           f"from each request's intended start, so queueing and stalls count. **p99 crosses {threshold:g} ms** "
           f"for good: the last step whose p99 stayed at or below it, the step after it (above it, or with "
           f"errors), and the achieved rate at the crossing interpolated between them; **excursions**: lower "
           f"steps that went above it anyway (see their \"other\" column: often the machine's noise).", "",
           f"| scenario | impl | closed-loop max req/s | p99 ≤ {threshold:g} ms up to | p99 > {threshold:g} ms from "
           f"| crossing ≈ req/s | excursions | p50 / p99 / p99.9 ms at 50 % | at 90 % | at 100 % |",
           "|---|---|---:|---|---|---:|---|---|---|---|"]

    def step(p):
        if p is None:
            return "–"
        return (f"{p['percent']:g} % ({p.get('achieved_rate', p['offered_rate']):,.0f} req/s, "
                f"p99 {_fmt_ms(_p(p))} ms)")

    def at(curve, pct):
        p = next((q for q in curve["points"] if q["percent"] == pct), None)
        if p is None:
            return "–"
        if p.get("failed"):
            return "FAILED"
        return " / ".join(_fmt_ms(_p(p, k)) for k in ("p50", "p99", "p99.9"))

    for r in rows:
        c = r["curve"]
        x = crossing(c, threshold)
        if x["below"] is None:
            up_to, cross = "no step", NA
        else:
            up_to = step(x["below"])
            cross = _fmt_num(x["at"]) if x["at"] is not None else (
                "not within the sweep" if x["above"] is None else NA)
        exc = ", ".join(f"{p['percent']:g} % (p99 {_fmt_ms(_p(p))} ms)" for p in x["excursions"]) or "none"
        out.append(f"| {r['scenario']} | {r['impl']} | {_fmt_num(c['max_rps'])} | {up_to} | "
                   f"{step(x['above']) if x['above'] else 'not crossed'} | {cross} | {exc} | "
                   f"{at(c, 50)} | {at(c, 90)} | {at(c, 100)} |")
    out += ["", "Every step: offered → achieved req/s; p50 / p99 / p99.9 / max ms; errors; **send lag** p99: how "
            "late requests left against the schedule (waiting for a free connection, or the client itself late); "
            "**timer late** p99: how late squall-load's own timer woke (its share of that lag: descheduled or "
            "busy); **other**: the share of the server's and client's cores other processes took during the "
            "step (noise: above ~10 % the machine was not quiet and a stall may be the machine's, not the "
            "server's).", "",
            "| scenario | impl | step | offered | achieved | p50 | p99 | p99.9 | max | errors | send lag p99 ms "
            "| timer late p99 ms | other |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        for p in r["curve"]["points"]:
            if p.get("failed"):
                out.append(f"| {r['scenario']} | {r['impl']} | {p['percent']:g} % | {_fmt_num(p['offered_rate'])} "
                           f"| **FAILED** | | | | | {p['failed']} | | | |")
                continue
            e = p.get("errors") or {}
            errs = ", ".join(f"{k} {v}" for k, v in e.items() if v) or "0"
            lag = (p.get("send_lag_us") or {}).get("p99")
            timer = p.get("timer_lateness_us") or {}
            late = timer.get("p99") if timer.get("count") else None   # the timer never fired: n/a
            out.append(f"| {r['scenario']} | {r['impl']} | {p['percent']:g} % | {_fmt_num(p['offered_rate'])} "
                       f"| {_fmt_num(p.get('achieved_rate'))} | {_fmt_ms(_p(p, 'p50'))} | {_fmt_ms(_p(p))} "
                       f"| {_fmt_ms(_p(p, 'p99.9'))} | {_fmt_ms(_p(p, 'max'))} | {errs} | {_fmt_ms(lag)} "
                       f"| {_fmt_ms(late)} | {_fmt_pct(p.get('foreign_cpu_share'))} |")
    out.append("")
    return out


def curve_plot(data, out_dir: str) -> str | None:
    """curves.png: per scenario a row of three panels (p50, p99, p99.9), latency from the
    intended start against achieved throughput, one line per implementation (points in
    the order of the offered rate, so an overloaded step that achieved less folds back)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data["results"] if r.get("curve")]
    if not rows:
        return None
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    impls = data["meta"]["impls"]
    colors = {impl: plt.cm.tab10(i) for i, impl in enumerate(impls)}
    threshold = (data["meta"].get("curve") or {}).get("p99_threshold_ms", 10)
    keys = ("p50", "p99", "p99.9")
    fig, axes = plt.subplots(len(scenarios), 3, figsize=(15, 4.6 * len(scenarios)), squeeze=False)
    for row_axes, sc in zip(axes, scenarios):
        for ax, key in zip(row_axes, keys):
            for r in (r for r in rows if r["scenario"] == sc):
                pts = [p for p in r["curve"]["points"] if not p.get("failed") and p.get("latency_us")]
                pts.sort(key=lambda p: p["offered_rate"])
                ax.plot([p["achieved_rate"] for p in pts], [max(p["latency_us"][key], 1) / 1000 for p in pts],
                        marker="o", markersize=3, color=colors[r["impl"]], label=r["impl"])
            if key == "p99":
                ax.axhline(threshold, color="grey", linewidth=0.8, linestyle="--")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xlabel("achieved throughput (requests/s)", fontsize=8)
            ax.set_ylabel(f"{key} latency from intended start (ms)", fontsize=8)
            ax.set_title(f"{sc}: {key}" + (f" (dashed: {threshold:g} ms)" if key == "p99" else ""), fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="both", alpha=0.3)
        row_axes[0].legend(fontsize=7)
    fig.suptitle(f"Latency against throughput: squall-load, open loop at {', '.join(f'{s:g}' for s in (data['meta'].get('curve') or {}).get('steps_percent', []))} % "
                 f"of each closed-loop maximum ({data['meta']['cpu_model']}, {data['meta']['date']})", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, "curves.png")
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


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
                    ax.plot(pcts, [max(lat.get(p) or 1, 1) / 1000 for p in pcts], marker="o",
                            color=colors[impl], label=impl)
            ax.set_yscale("log")
            ax.set_title(sc, fontsize=9)
            ax.set_ylabel("ms", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(lat_scen):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(f"Latency percentiles (ms, log scale; {data['meta'].get('engine') or 'wrk'})", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path, dpi=72)
        plt.close(fig)
        written.append(path)
    curves = curve_plot(data, out_dir)
    if curves:
        written.append(curves)
    return written


if __name__ == "__main__":
    src = sys.argv[1]
    with open(src) as f:
        data = json.load(f)
    if "--p99-threshold-ms" in sys.argv and data["meta"].get("curve"):
        data["meta"]["curve"]["p99_threshold_ms"] = float(sys.argv[sys.argv.index("--p99-threshold-ms") + 1])
    out_dir = os.path.dirname(os.path.abspath(src))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown(data))
    print("\n".join(plots(data, out_dir)))
