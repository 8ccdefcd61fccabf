"""Interleaved rounds (--interleave; the default with --repeat > 1): implementations measured
side by side, run by run.

On a shared machine throughput drifts by 10-30 % over minutes, so one implementation's runs
made minutes before another's compare the machine's moods as much as the servers. Here every
server is started (and pinned) first; then, scenario by scenario, each is warmed up once and
--repeat rounds follow: in each round every implementation gets one run of the scenario, in
an order that rotates (round r starts at implementation r mod n), so that drift and the
place in the round hit all alike. The rows (the median run per implementation) are what
they are without interleaving; each round also gives every implementation a ratio to the
baseline, and the median of those per-round ratios is the figure to quote (the report's
"Ratios from interleaved rounds").

Scenarios measured on an instance of their own (memory: once, on a fresh instance; TLS: an
HTTPS instance per implementation) are measured implementation by implementation as without
interleaving, and the log says so.
"""
from __future__ import annotations

import contextlib
import statistics

from . import impls
from . import run as runner


def rotation(n: int, r: int) -> list[int]:
    """The order of the n implementations in round r (0-based): from r mod n, wrapping."""
    return [(r + k) % n for k in range(n)]


def run_rounds(names: list[str], repeat: int, run_one) -> tuple[list[dict], dict]:
    """`repeat` rounds of run_one(name, r), in rotating order. Returns the rounds ({name:
    result}, one per round) and the implementations whose run raised ({name: exception}):
    those get no further runs."""
    rounds, failures = [], {}
    for r in range(repeat):
        results = {}
        for i in rotation(len(names), r):
            name = names[i]
            if name in failures:
                continue
            try:
                results[name] = run_one(name, r)
            except Exception as e:
                failures[name] = e
        rounds.append(results)
    return rounds, failures


def figure(result: dict | None, key: str) -> float | None:
    """A run's requests/s, requests per server-CPU-second or p99 latency (µs); None if it
    was not measured (wrk has no percentiles for a pipelined run) or the run had errors or
    completed nothing."""
    if not result or not result.get("requests") or result.get("socket_errors") or result.get("non_2xx"):
        return None
    if key == "rps":
        return result["rps"]
    if key == "p99":
        return runner.p99_us(result) or None
    cpu = result.get("server_cpu_s")
    return result["requests"] / cpu if cpu else None


def other_load(a: dict | None, b: dict | None) -> float | None:
    """The larger of two runs' "other load" (foreign_cpu_share); None if either is unknown."""
    shares = [r.get("foreign_cpu_share") if r else None for r in (a, b)]
    return None if None in shares else max(shares)


# The figures compared round by round, each as a ratio that is > 1 where the implementation
# does better than the baseline: requests/s and per server-CPU-second as implementation ÷
# baseline, p99 latency (lower is better) as baseline ÷ implementation. p99 compared within
# each round, as throughput is: one run's p99 moves with the machine as much as its rate.
RATIO_FIGURES = {"rps": False, "rps_per_server_cpu_s": False, "p99": True}  # figure: lower is better


def ratio_medians(scenario: str, rounds: list[dict], baseline: str, names: list[str]) -> list[dict]:
    """For every implementation but the baseline: its ratio to the baseline in each round
    (None where either run has no figure) and their median, for each of RATIO_FIGURES.
    Nothing when the baseline was not measured."""
    if baseline not in names:
        return []
    out = []
    for name in names:
        if name == baseline:
            continue
        entry = {"scenario": scenario, "impl": name, "baseline": baseline}
        for key, lower_is_better in RATIO_FIGURES.items():
            per_round = []
            for results in rounds:
                a, b = figure(results.get(name), key), figure(results.get(baseline), key)
                if lower_is_better:
                    a, b = b, a
                per_round.append(round(a / b, 4) if a is not None and b else None)
            measured = [x for x in per_round if x is not None]
            entry[key] = {"median": round(statistics.median(measured), 4) if measured else None,
                          "per_round": per_round}
        entry["rounds"] = sum(1 for x in entry["rps"]["per_round"] if x is not None)
        # How quiet each round was: the larger share of the two runs' cores that other
        # processes took (None where it was not read): a ratio from a noisy round is noisier.
        entry["other_load"] = [other_load(results.get(name), results.get(baseline)) for results in rounds]
        out.append(entry)
    return out


def not_interleaved(sc) -> str | None:
    """Why a scenario is measured implementation by implementation even with --interleave."""
    if sc.name == "memory":
        return "measured once, on a fresh instance of each implementation"
    if sc.tls:
        return "each implementation's TLS instance is started for it"
    return None


def run_all(args, infos: dict, rows: list, ratios: list) -> None:
    """Starts every implementation, then measures scenario by scenario (rows and ratios
    appended as they come); every server is stopped by PID at the end, on errors and on
    Ctrl-C (a --url server's CPU affinity put back)."""
    with contextlib.ExitStack() as stack:
        targets = []
        for spec in args.specs:
            try:
                targets.append(stack.enter_context(runner.opened(spec, args, infos[spec.name])))
            except Exception as e:
                runner.fail_the_rest(spec.name, args, rows, e)
        for sc in args.scenarios:
            why = not_interleaved(sc)
            if why:
                runner.log(f"{sc.name}: not interleaved ({why}): implementation by implementation")
                rows.extend(runner.measure_logged(t, sc, args) for t in targets)
            else:
                ratios.extend(side_by_side(targets, sc, args, rows))


def side_by_side(targets: list, sc, args, rows: list) -> list[dict]:
    """One scenario in interleaved rounds: a row per implementation (appended to rows), and
    the per-round ratios to the baseline (returned)."""
    done, live = {}, []
    for t in targets:
        why = impls.unserved(t.desc, sc) or runner.elsewhere(t, sc) or runner.not_ready(t, sc, args)
        if why:
            done[t.name] = runner.not_measured_row(t, sc, why)
        else:
            live.append(t)
    runner.log(f"{sc.name}: {len(live)} implementation(s) in {args.repeat} interleaved round(s), "
               f"order rotating: {', '.join(t.name for t in live) or 'none'}")
    for t in live:
        runner.warm_up(t, sc, args)
    connections = sc.connections or args.connections
    by_name, pinned = {t.name: t for t in live}, {}

    def run_one(name: str, r: int) -> dict:
        result, pinned[name] = runner.one_run(by_name[name], sc, args, connections, f"round {r + 1}/{args.repeat}")
        return result

    rounds, failures = run_rounds(list(by_name), args.repeat, run_one)
    for t in live:
        if t.name in failures:
            done[t.name] = runner.failed_row(t, sc, failures[t.name])
        else:
            done[t.name] = runner.base_row(t, sc)
            runner.summarize(done[t.name], t, args, [results[t.name] for results in rounds], connections,
                             pinned[t.name])
    rows.extend(runner.log_row(done[t.name]) for t in targets)
    return ratio_medians(sc.name, rounds, args.baseline, [n for n in by_name if n not in failures])
