#!/usr/bin/python3
"""The mutation harness: how many single, realistic defects does the conformance suite catch?

    squall-mutants [--short] [--only NAME,...] [--json F] [--md F] [--jobs N] [--timeout S] [--require-all]
    (from a clone: python3 -m squall_conformance.mutants ... in its root)

First the suite runs against the unmutated programs of mutant.toml (the baseline: it must
have no failure on a required MUST case), then once per mutant -- the same programs with one
`--defect NAME` -- on the layer that program serves (server mutants: the server layer; client
mutants: the client layer), at most --jobs (default 2) suite runs at a time. A mutant is
killed when some case got worse than in the baseline (squall_conformance.expect.worse, the
rule of --expect), and the strongest such change is its detection level:

    MUST fail        a MUST case now fails (or errors)
    SHOULD/MAY fail  a SHOULD or MAY case now fails (the suite saw harm: smuggling, a hang)
    warn             only warnings (or a case that no longer applies)

The table (mutant, class, level, cases that caught it) and the detection rates per class,
for server and client mutants separately and overall, go to stdout; --json and --md write
them too; progress per mutant goes to stderr. The mutant programs and their description are
the suite's mutants/ folder (conformance/mutants/ in a clone); see its README.md.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

from . import core, helpformat, paths
from .expect import worse

PYTHON = "/usr/bin/python3"
HERE = paths.suite("mutants")   # the mutant programs and their description
DESCRIPTION = os.path.join(HERE, "mutant.toml")
PROGRAMS = {"server": os.path.join(HERE, "server.py"), "client": os.path.join(HERE, "fetch.py")}
# What a snapshot of the suite holds besides the package: the folders of the suite the
# driver reads (the built-in descriptions: its --help names them) and these programs.
SNAPSHOT_FOLDERS = ("implementations", "mutants")
LAYER = {"server": "server", "client": "client"}

# The --short selection (CI): fast, deterministic, one or two per class.
SHORT = {
    "server": ["cl-lenient", "te-cl-uses-cl", "head-body", "keep-http10", "late-413", "echo-dedup",
               "405-no-allow", "bytes-short"],
    "client": ["post-303-kept", "cl-first-wins", "no-max-body", "interim-final"],
}

# Why a mutant survives, as found in the full run (README.md): a blind spot of the suite, or a
# defect the RFC allows. Printed beside the missed mutants.
WHY_MISSED = {
    "echo-lower": "blind spot: WEB-048 compares the /echo lines lower-cased, and no other case looks at the "
                  "case of a name, though contract §1 says 'the name as received (case kept)'",
    "chunk-overrun": "blind spot: client-chunked-bad-terminator sends '5 CRLF helloXX0 CRLF CRLF', which a client "
                     "reading chunk data up to the next CRLF also refuses (as a bad chunk size); no case sends "
                     "a chunk longer than its size followed by CRLF",
    "fold-raw": "blind spot: no client case sends obs-fold in a response (RFC 9112 §5.2: a user agent MUST "
                "replace it with SP before interpreting the value)",
}

TIERS = ("MUST fail", "SHOULD/MAY fail", "warn")
RECHECK = 12          # worse cases run again per mutant (the strongest first)
BASELINE_RETRIES = 2  # a required baseline failure is run again this often before it counts
PROGRESS_RE = re.compile(r"^\[(\S+) (\d+)/(\d+)\] (\S+)\s+(pass|warn|fail|n/a|error)\s")


def snapshot(workdir, tries=6, pause=5.0):
    """A copy of the suite taken once, laid out as in a clone (root/conformance/ with the
    package, root/reference/tests/tls/make_certs.sh) whether this one is a clone or
    installed: the baseline and every mutant run the same cases even while someone edits
    the working tree. A copy whose driver cannot even list its cases (caught mid-edit) is
    taken again, a few times. Returns the copy's root (it stands for the repository)."""
    for attempt in range(tries):
        root = os.path.join(workdir, f"suite{attempt}")
        shutil.copytree(paths.PACKAGE, os.path.join(root, "conformance", "squall_conformance"),
                        ignore=shutil.ignore_patterns("__pycache__", "suite"))
        for folder in SNAPSHOT_FOLDERS:
            shutil.copytree(paths.suite(folder), os.path.join(root, "conformance", folder),
                            ignore=shutil.ignore_patterns("__pycache__"))
        certs = os.path.join(root, "reference", "tests", "tls")
        os.makedirs(certs)
        shutil.copy2(paths.MAKE_CERTS, certs)
        check = subprocess.run([PYTHON, "-m", "squall_conformance", "--list"], cwd=os.path.join(root, "conformance"),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if check.returncode == 0:
            return root
        log(f"the suite in the working tree does not load ({check.stderr.decode(errors='replace').strip()[-200:]}); "
            f"trying again in {pause:g} s")
        time.sleep(pause)
    return root


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- the mutants ----------------------------------------------------------------------------------

def load_defects(program):
    """DEFECTS of server.py or fetch.py: name -> (class, description, imitates)."""
    spec = importlib.util.spec_from_file_location(f"squall_mutant_{program}", PROGRAMS[program])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DEFECTS


def all_mutants():
    out = []
    for program in ("server", "client"):
        for name, (cls, what, imitates) in load_defects(program).items():
            out.append({"name": name, "program": program, "class": cls, "description": what,
                        "imitates": imitates})
    return out


def select(mutants, short=False, only=None):
    if only:
        known = {m["name"] for m in mutants}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise SystemExit(f"squall-mutants: unknown mutant(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return [m for m in mutants if m["name"] in only]
    if short:
        return [m for m in mutants if m["name"] in SHORT[m["program"]]]
    return list(mutants)


# ---- descriptions ---------------------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def toml_text(data, prefix=""):
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    for k, v in tables:
        name = f"{prefix}.{k}" if prefix else k
        lines.append(f"\n[{name}]")
        lines.append(toml_text(v, name))
    return "\n".join(lines)


def describe(workdir, program=None, defect=None, root=None):
    """A description file of mutant.toml's programs (only `program`'s layer when given),
    with `--defect defect` added to that program's command; {here} made absolute (the
    mutants folder of the snapshot at `root`, or of this suite) since the file lives in a
    temporary directory."""
    here = os.path.join(root, "conformance", "mutants") if root else HERE
    with open(os.path.join(here, "mutant.toml"), "rb") as f:
        data = tomllib.load(f)

    def absolute(x):
        if isinstance(x, str):
            return x.replace("{here}", here)
        if isinstance(x, list):
            return [absolute(y) for y in x]
        if isinstance(x, dict):
            return {k: absolute(v) for k, v in x.items()}
        return x
    data = absolute(data)
    if program is not None:
        for layer in ("server", "client", "stream", "loop"):
            if layer != LAYER[program]:
                data.pop(layer, None)
    if defect is not None:
        data["name"] = f"{data['name']}-{defect}"
        data["title"] = f"{data.get('title', data['name'])} with --defect {defect}"
        data[LAYER[program]]["command"] = data[LAYER[program]]["command"] + ["--defect", defect]
    path = os.path.join(workdir, f"{data['name']}.toml" if defect else f"baseline-{program or 'all'}.toml")
    with open(path, "w") as f:
        f.write(toml_text(data) + "\n")
    return path


# ---- running the suite ----------------------------------------------------------------------------

_procs_lock = threading.Lock()
_procs = set()


def run_suite(desc, layers, workdir, cases=None, areas=None, timeout=300.0, root=None, tag=""):
    """Run the suite (the snapshot's at `root`, or this one) on one description; returns {"verdicts":
    {id: verdict}, "reasons": {id: reason}, "required": {id: bool}, "levels": {id: level},
    "tornado": set of ids, "seconds", "status", "timed_out"} (and "problem" when the suite
    gave no verdict at all). Verdicts come from the JSON report, or, when the run was cut
    at `timeout`, from its per-case progress lines."""
    stem = os.path.splitext(os.path.basename(desc))[0] + (f"-{tag}" if tag else "")
    out_json = os.path.join(workdir, f"{stem}.json")
    argv = [PYTHON, "-m", "squall_conformance", "--impl", desc, "--layers", ",".join(layers), "--gate", "none", "--jobs", "1",
            "--json", out_json]
    if cases:
        argv += ["--case", ",".join(cases)]
    if areas:
        argv += ["--area", ",".join(areas)]
    t0 = time.monotonic()
    with open(os.path.join(workdir, f"{stem}.out"), "wb") as out, open(os.path.join(workdir, f"{stem}.err"), "wb") as err:
        # python3 -m imports the driver from its working directory: the snapshot's conformance/
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=os.path.join(root, "conformance") if root else paths.IMPORT_ROOT,
                                start_new_session=True)
        with _procs_lock:
            _procs.add(proc)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop(proc)
        finally:
            with _procs_lock:
                _procs.discard(proc)
    result = {"verdicts": {}, "reasons": {}, "required": {}, "levels": {}, "tornado": set(),
              "seconds": round(time.monotonic() - t0, 1), "status": proc.returncode, "timed_out": timed_out}
    if not timed_out and os.path.exists(out_json):
        with open(out_json) as f:
            report = json.load(f)
        for c in report["cases"]:
            (r,) = c["results"].values()
            result["verdicts"][c["id"]] = r["verdict"]
            result["reasons"][c["id"]] = r["reason"]
            result["required"][c["id"]] = r["required"]
            result["levels"][c["id"]] = c["level"]
            if core.TORNADO in c.get("tags", []):
                result["tornado"].add(c["id"])
    else:
        with open(os.path.join(workdir, f"{stem}.err"), errors="replace") as f:
            for line in f:
                m = PROGRESS_RE.match(line)
                if m:
                    result["verdicts"][m.group(4)] = m.group(5)
                    result["reasons"][m.group(4)] = line[m.end():].strip()[:200]
    if not result["verdicts"]:
        with open(os.path.join(workdir, f"{stem}.out"), errors="replace") as f:
            tail = f.read()[-600:]
        with open(os.path.join(workdir, f"{stem}.err"), errors="replace") as f:
            tail += f.read()[-600:]
        result["problem"] = f"the suite gave no verdict (exit status {proc.returncode}): {tail.strip()}"
    return result


def stop(proc):
    """Stop a suite run we started, by its PID: SIGINT first so that it stops the programs it
    started (its own finally blocks), SIGKILL if it does not end."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_all():
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        stop(p)


def settle_baseline(b, layers, workdir, timeout, root, progress=log):
    """Required baseline failures run again (BASELINE_RETRIES times at most): one that
    passes then was the machine's, not the program's; the best verdict seen is kept."""
    b["flaky"] = []
    for attempt in range(BASELINE_RETRIES):
        bad = baseline_problems(b)
        if not bad:
            return
        again = run_suite(b["desc"], layers, workdir, cases=bad, timeout=timeout, root=root, tag=f"retry{attempt}")
        for c in bad:
            v = again["verdicts"].get(c)
            if v is not None and worse(v, b["verdicts"][c]):
                progress(f"baseline: {c} {b['verdicts'][c]} then {v} when run again (timing); kept {v}")
                b["verdicts"][c], b["reasons"][c] = v, again["reasons"].get(c, "")
                b["flaky"].append(c)


def baseline_problems(base):
    """Required MUST cases the unmutated programs fail: they must be none."""
    return sorted(cid for cid, v in base["verdicts"].items()
                  if base["required"].get(cid) and v in (core.FAIL, core.ERROR))


# ---- judging --------------------------------------------------------------------------------------

def tier(level, new):
    if new in (core.FAIL, core.ERROR):
        return "MUST fail" if level == "MUST" else "SHOULD/MAY fail"
    return "warn"


def judge(base, verdicts):
    """The cases that got worse than the baseline run `base`: [(case id, old, new, tier)],
    strongest first."""
    got = []
    for cid, old in base["verdicts"].items():
        new = verdicts.get(cid)
        if new is not None and worse(old, new):
            got.append((cid, old, new, tier(base["levels"].get(cid), new)))
    got.sort(key=lambda x: (TIERS.index(x[3]), x[0]))
    return got


def recheck(m, caught, base, workdir, timeout, root):
    """The cases that got worse, run again (the strongest RECHECK of them): on the mutant,
    then on the unmutated program as a control. {case id: confirmed}: worse again on the
    mutant and not worse on the control -- a timing case that failed because the machine
    was busy is not a detection."""
    ids = [c for c, *_ in caught[:RECHECK]]
    layer = [LAYER[m["program"]]]
    again = run_suite(describe(workdir, m["program"], m["name"], root=root), layer, workdir, cases=ids,
                      timeout=timeout, root=root, tag="recheck")
    b = base[m["program"]]
    worse_again = [c for c in ids if c in again["verdicts"] and worse(b["verdicts"][c], again["verdicts"][c])]
    control = run_suite(b["desc"], layer, workdir, cases=worse_again, timeout=timeout, root=root,
                        tag=f"control-{m['name']}") if worse_again else {"verdicts": {}}
    return {c: (c in worse_again and not worse(b["verdicts"][c], control["verdicts"].get(c, b["verdicts"][c])))
            for c in ids}


def run_mutant(m, base, workdir, timeout, cases=None, areas=None, root=None, confirm=True):
    """One mutant through the suite, judged against the baseline of its program; with
    `confirm`, what got worse is checked again (recheck) and only confirmed cases count."""
    desc = describe(workdir, m["program"], m["name"], root=root)
    r = run_suite(desc, [LAYER[m["program"]]], workdir, cases=cases, areas=areas, timeout=timeout, root=root)
    b = base[m["program"]]
    caught = [] if r.get("problem") else judge(b, r["verdicts"])
    confirmed = recheck(m, caught, base, workdir, timeout, root) if confirm and caught else {}
    counted = [x for x in caught if confirmed.get(x[0], True)]
    if confirm and caught and not any(confirmed.values()):
        counted = []
    return {**m, "killed": bool(counted), "judged_ok": not r.get("problem"),
            "level": counted[0][3] if counted else None,
            "cases": [{"id": c, "baseline": o, "verdict": n, "tier": t, "reason": r["reasons"].get(c, ""),
                       "confirmed": confirmed.get(c)} for c, o, n, t in counted],
            "unconfirmed": [c for c, ok in confirmed.items() if not ok],
            "tornado_only": bool(counted) and all(c in b["tornado"] for c, *_ in counted),
            "seconds": r["seconds"], "timed_out": r["timed_out"], "judged": len(r["verdicts"]),
            "problem": r.get("problem"), "why_missed": None if caught else WHY_MISSED.get(m["name"], "")}


def run_all(mutants, workdir, jobs=2, timeout=300.0, cases=None, areas=None, progress=log):
    """A snapshot of the suite, the baselines, then every mutant, at most `jobs` suite runs
    at a time. A program's mutants start as soon as its own baseline is settled (the client
    layer's is quick: its mutants run while the server baseline still does). Returns
    (baseline per program, results in the order of `mutants`; none when a baseline fails)."""
    programs = sorted({m["program"] for m in mutants}, key=list(PROGRAMS).index)
    root = snapshot(workdir)
    base = {}
    ready = {p: threading.Event() for p in programs}
    t0 = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def baseline(p):
        try:
            desc = describe(workdir, p, root=root)
            b = run_suite(desc, [LAYER[p]], workdir, cases, areas, timeout, root)
            b["desc"] = desc
            progress(f"baseline {p}: {len(b['verdicts'])} cases in {b['seconds']} s")
            settle_baseline(b, [LAYER[p]], workdir, timeout, root, progress)
            base[p] = b
        finally:
            ready[p].set()

    def usable(p):
        b = base.get(p)
        return b is not None and not (baseline_problems(b) or b.get("problem") or b["timed_out"])

    def one(m):
        ready[m["program"]].wait()
        if not all(usable(p) for p in programs if ready[p].is_set()) or not usable(m["program"]):
            return None
        r = run_mutant(m, base, workdir, timeout, cases, areas, root)
        with lock:
            done[0] += 1
            what = (f"killed ({r['level']}) by {', '.join(c['id'] for c in r['cases'][:5])}"
                    + (f" +{len(r['cases']) - 5}" if len(r["cases"]) > 5 else "")) if r["killed"] else "MISSED"
            if r["unconfirmed"]:
                what += f"; not confirmed when run again: {', '.join(r['unconfirmed'])}"
            if not r["judged_ok"]:
                what = f"NOT JUDGED: {r['problem'][:300]}"
            extra = " (cut at the time limit)" if r["timed_out"] else ""
            progress(f"[{done[0]}/{len(mutants)}] {m['program']} {m['name']}: {what} in {r['seconds']} s{extra}"
                     f" [{time.monotonic() - t0:.0f} s]")
        return r

    # Baselines first (the pool takes tasks in order, so they never wait behind a mutant),
    # then the client mutants (their baseline is ready first), then the server mutants.
    order = sorted(range(len(mutants)), key=lambda i: mutants[i]["program"] != "client")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        baselines = [pool.submit(baseline, p) for p in programs]
        futures = {i: pool.submit(one, mutants[i]) for i in order}
        results = [futures[i].result() for i in range(len(mutants))]
        for f in baselines:
            f.result()   # a harness bug in a baseline surfaces here
    if any(not usable(p) for p in programs) or any(r is None for r in results):
        return base, []
    return base, results


# ---- reports --------------------------------------------------------------------------------------

def rates(results):
    """{program: {class: (killed, killed at MUST fail, killed by a case not tagged Tornado
    semantics, total)}, "all" last, then "overall"}."""
    out = {p: {} for p in PROGRAMS if any(r["program"] == p for r in results)}
    for r in results:
        if not r["judged_ok"]:
            continue
        out[r["program"]].setdefault(r["class"], (0, 0, 0, 0))
    for p in out:
        out[p]["all"] = (0, 0, 0, 0)
    out["overall"] = {"all": (0, 0, 0, 0)}
    for r in results:
        if not r["judged_ok"]:
            continue
        add = (int(r["killed"]), int(r["level"] == "MUST fail"), int(r["killed"] and not r["tornado_only"]), 1)
        for p, key in ((r["program"], r["class"]), (r["program"], "all"), ("overall", "all")):
            out[p][key] = tuple(a + b for a, b in zip(out[p][key], add))
    if len(out) == 1:
        out.pop("overall")
    return out


def pct(k, n):
    return f"{100 * k / n:.0f}%" if n else "-"


def case_list(r, n=6):
    ids = [c["id"] for c in r["cases"]]
    return ", ".join(ids[:n]) + (f" +{len(ids) - n}" if len(ids) > n else "")


def console(base, results, out=sys.stdout):
    w = out.write
    for p, b in base.items():
        counts = {}
        for v in b["verdicts"].values():
            counts[v] = counts.get(v, 0) + 1
        w(f"baseline {p}: {len(b['verdicts'])} cases in {b['seconds']} s: "
          + ", ".join(f"{counts[v]} {v}" for v in core.VERDICTS if v in counts) + "\n")
        bad = baseline_problems(b)
        if bad:
            w(f"BASELINE FAILS required MUST cases: {', '.join(bad)}\n")
        if b.get("problem"):
            w(f"BASELINE: {b['problem']}\n")
        if b.get("flaky"):
            w(f"baseline {p}: passed when run again (timing): {', '.join(b['flaky'])}\n")
    for program in PROGRAMS:
        rs = [r for r in results if r["program"] == program]
        if not rs:
            continue
        w(f"\n{program} mutants\n")
        w(f"{'mutant':<24} {'class':<10} {'detected at':<16} cases\n")
        for r in rs:
            level = r["level"] or ("MISSED" if r["judged_ok"] else "NOT JUDGED")
            cases_ = case_list(r) if r["killed"] else (r["why_missed"] or r["problem"] or "")
            w(f"{r['name']:<24} {r['class']:<10} {level:<16} {cases_}"
              + (" (cut at the time limit)" if r["timed_out"] else "") + "\n")
    w("\ndetection rate (killed / mutants; killed by a MUST failure; killed without the cases tagged "
      "Tornado semantics)\n")
    for program, per in rates(results).items():
        for cls, (k, km, kr, n) in per.items():
            label = "ALL" if cls == "all" else cls
            w(f"  {program:<8} {label:<10} {k:>3}/{n:<3} {pct(k, n):>5}   MUST fail {km}/{n}   "
              f"without Tornado-tagged cases {kr}/{n}\n")
    missed = [r for r in results if not r["killed"] and r["judged_ok"]]
    if missed:
        w(f"\nmissed: {', '.join(r['name'] for r in missed)}\n")
    broken = [r for r in results if not r["judged_ok"]]
    if broken:
        w(f"NOT JUDGED (the suite gave no verdict; not counted): {', '.join(r['name'] for r in broken)}\n")


def markdown(base, results):
    lines = []
    for program in PROGRAMS:
        rs = [r for r in results if r["program"] == program]
        if not rs:
            continue
        lines += [f"### {program.capitalize()} mutants", "",
                  "| mutant | class | defect | detected at | cases that caught it |", "|---|---|---|---|---|"]
        for r in rs:
            level = r["level"] or ("**missed**" if r["judged_ok"] else "not judged")
            cs = case_list(r, 8) if r["killed"] else (r["why_missed"] or r["problem"] or "")
            lines.append(f"| `{r['name']}` | {r['class']} | {r['description']} | {level} | {cs} |")
        lines.append("")
    lines += ["### Detection rate", "",
              "| programs | class | killed | rate | by a MUST failure | without Tornado-tagged cases |",
              "|---|---|---|---|---|---|"]
    for program, per in rates(results).items():
        for cls, (k, km, kr, n) in per.items():
            label = "**all**" if cls == "all" else cls
            lines.append(f"| {program} | {label} | {k}/{n} | {pct(k, n)} | {km}/{n} | {kr}/{n} ({pct(kr, n)}) |")
    return "\n".join(lines) + "\n"


def to_json(base, results, meta):
    return {"meta": meta,
            "baseline": {p: {"seconds": b["seconds"], "verdicts": b["verdicts"], "problem": b.get("problem"),
                             "flaky": b.get("flaky", []),
                             "required_failures": baseline_problems(b)} for p, b in base.items()},
            "mutants": results,
            "rates": {p: {c: {"killed": k, "must_fail": km, "killed_without_tornado_cases": kr, "total": n}
                          for c, (k, km, kr, n) in per.items()} for p, per in rates(results).items()}}


def parser():
    p = helpformat.parser("squall-mutants", "Mutation harness of the conformance suite (conformance/mutants/README.md)")
    p.add_argument("--short", action="store_true", help="8 server and 4 client mutants (CI; under 3 minutes)")
    p.add_argument("--only", action="append", help="comma list of mutant names (default: every mutant)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--json", help="write the results as JSON here (default: not written)")
    p.add_argument("--md", help="write the table as Markdown here (default: not written)")
    p.add_argument("--jobs", type=int, default=2, help="suite runs at a time")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per suite run before it is cut")
    p.add_argument("--require-all", action="store_true", help="exit 1 when a selected mutant survives")
    p.add_argument("--keep", help="keep the descriptions, reports and logs in this directory "
                   "(default: a temporary one, removed)")
    p.add_argument("--from-json", help="run nothing: print (and --md) the results of an earlier --json file "
                   "(default: run)")
    return p


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    only = [x.strip() for v in a.only or [] for x in v.split(",") if x.strip()]
    if a.from_json:
        with open(a.from_json) as f:
            old = json.load(f)
        console({}, old["mutants"])
        if a.md:
            with open(a.md, "w") as f:
                f.write(markdown({}, old["mutants"]))
            print(f"wrote {a.md}")
        return 0
    mutants = select(all_mutants(), a.short, only)
    if a.list:
        for m in mutants:
            print(f"{m['program']:<7} {m['class']:<10} {m['name']:<24} {m['description']}"
                  + (f"  [{m['imitates']}]" if m["imitates"] else ""))
        print(f"{len(mutants)} mutants")
        return 0
    if not mutants:
        p.error("no mutant selected")
    workdir = a.keep or tempfile.mkdtemp(prefix="squall-mutants-")
    os.makedirs(workdir, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()
    log(f"mutation harness: {len(mutants)} mutants, {a.jobs} suite run(s) at a time; work in {workdir}")
    try:
        base, results = run_all(mutants, workdir, jobs=max(1, a.jobs), timeout=a.timeout)
    except KeyboardInterrupt:
        stop_all()
        raise
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {"started": started, "seconds": round(time.monotonic() - t0, 1),
            "command": " ".join(["squall-mutants"] + (argv if argv is not None else sys.argv[1:])),
            "mutants": len(mutants)}
    console(base, results)
    print(f"\n{len(results)} mutants in {meta['seconds']} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(to_json(base, results, meta), f, indent=1)
        print(f"wrote {a.json}")
    if a.md:
        with open(a.md, "w") as f:
            f.write(markdown(base, results))
        print(f"wrote {a.md}")
    if not results or any(baseline_problems(b) or b.get("problem") or b["timed_out"] for b in base.values()):
        return 2
    if a.require_all and any(not r["killed"] for r in results):
        return 1
    if any(not r["judged_ok"] for r in results):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
