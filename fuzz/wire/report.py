"""Reports of a wire-fuzzing run: a console table, an HTML page, the replay table, and the
CI check of boundary disagreements against the list of explained ones."""
from __future__ import annotations

import html
import json
import os

CLASSES = ("boundary", "content", "accept/reject", "liveness")


def _table(rows, out):
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(rows[0]))]
    for n, r in enumerate(rows):
        out.write("  ".join(f"{str(x):<{w}}" for x, w in zip(r, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def console(kept, meta, out):
    out.write(f"\n{meta['inputs']} inputs in {meta['seconds']} s ({meta['rate']}/s), seed {meta['seed']}, "
              f"oracle {meta['oracle']}; restarts: "
              + ", ".join(f"{k} {v}" for k, v in meta["restarts"].items()) + "\n")
    out.write("disagreements seen (before deduplication): "
              + ", ".join(f"{k} {v}" for k, v in meta["disagreements"].items()) + "\n\n")
    if not kept:
        out.write("no findings\n")
        return
    rows = [("class", f"reads it otherwise than {meta['oracle']}", "operators", "bytes", "found after (s)", "detail")]
    for f in kept:
        if f["class"] == "accept/reject":   # many and mild: counted below, listed in the HTML
            continue
        rows.append((f["class"], who(f), ",".join(f["operators"]), sum(f["pieces"]),
                     f.get("found_after_seconds", "-"), f["detail"][:60]))
    _table(rows, out)
    by = {}
    for f in kept:
        for name in (f["odd"] if f.get("against_oracle", True) else ["(" + " vs ".join(f["pair"]) + ")"]):
            by[(f["class"], name)] = by.get((f["class"], name), 0) + 1
    out.write(f"\nfindings by class and by the target that reads the bytes otherwise than {meta['oracle']}:\n")
    _table([("class", "target", "findings")] + [(c, n, k) for (c, n), k in sorted(by.items())], out)


def who(f):
    """The targets that read the bytes otherwise than the oracle, or the pair that disagree
    between themselves (in brackets) when the oracle is not part of it."""
    return ",".join(f["odd"]) if f.get("against_oracle", True) else "(" + " vs ".join(f["pair"]) + ")"


def replay_table(rows, bad, out):
    table = [("finding", "class", "pair", "result")]
    for path, f, _, result in rows:
        table.append((os.path.basename(path), f["class"], " vs ".join(f["pair"]), result))
    _table(table, out)
    for path, why in bad:
        out.write(f"MALFORMED {path}: {why}\n")


def html_page(kept, meta):
    e = html_escape
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Squall wire fuzzing</title><style>",
           "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}"
           "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f0f0f0}"
           "pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#fafafa;margin:0}",
           "</style></head><body><h1>Squall wire fuzzing</h1>",
           f"<p>{meta['inputs']} inputs in {meta['seconds']} s ({meta['rate']}/s), seed {meta['seed']}, oracle "
           f"<b>{e(meta['oracle'])}</b>. Command: <code>{e(meta['command'])}</code></p>",
           "<table><tr><th>implementation</th><th>version</th><th>description</th><th>restarts</th></tr>"]
    for m in meta["implementations"]:
        out.append(f"<tr><td>{e(m['name'])}</td><td>{e(m['version'])}</td><td>{e(m['description'])}</td>"
                   f"<td>{meta['restarts'].get(m['name'], 0)}</td></tr>")
    out.append("</table>")
    out.extend(_proxy_html([f for f in kept if f.get("mode") == "proxy"], meta))
    for cls in CLASSES:
        fs = [f for f in kept if f["class"] == cls and f.get("mode") != "proxy"]
        if not fs and meta.get("mode") == "proxy":
            continue
        out.append(f"<h2>{e(cls)}: {len(fs)}</h2>")
        if not fs:
            continue
        names = sorted({n for f in fs for n in f["interpretations"]})
        out.append("<table><tr><th>reads it otherwise / detail</th><th>bytes</th>" + "".join(f"<th>{e(n)}</th>" for n in names)
                   + "<th>mutations / rules</th></tr>")
        for f in fs:
            cells = "".join(
                f"<td><pre>{e(_interp(f['interpretations'][n]))}</pre></td>" if n in f["interpretations"] else "<td></td>"
                for n in names)
            out.append(f"<tr><td><b>{e(who(f))}</b><br>{e(f['detail'])}</td>"
                       f"<td><pre>{e(f['bytes'])}</pre>writes: {f['pieces']}</td>{cells}"
                       f"<td>{e('; '.join(what for _, what in f['ops']))}<br><i>{e('; '.join(f['rules']))}</i></td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


VIEW_TITLES = {
    "forwarded": "what the front forwarded against what the back-end understood",
    "backend": "the forwarded bytes: the oracle's reading against the back-end's",
    "client": "the front's answers against the oracle's reading of the client's bytes",
}


def proxy_console(kept, meta, out):
    """The proxy mode's console report: disagreements by view and class, then the findings."""
    out.write(f"\n{meta['inputs']} inputs in {meta['seconds']} s ({meta['rate']}/s) through "
              f"{', '.join(f['name'] for f in meta['fronts'])} to {meta['backend']}, seed {meta['seed']}, oracle "
              f"{meta['oracle']}; restarts: " + ", ".join(f"{k} {v}" for k, v in meta["restarts"].items()) + "\n")
    out.write("disagreements seen (before deduplication):\n")
    _table([("view",) + CLASSES] + [(v,) + tuple(c[k] for k in CLASSES) for v, c in meta["disagreements"].items()],
           out)
    if not kept:
        out.write("\nno findings\n")
        return
    rows = [("class", "view", "front", "operators", "bytes", "found after (s)", "detail")]
    for f in kept:
        if f["class"] == "accept/reject" and f["view"] == "client":   # many and mild: counted below, in the HTML
            continue
        rows.append((f["class"], f["view"], f["front"], ",".join(f["operators"]), sum(f["pieces"]),
                     f.get("found_after_seconds", "-"), f["detail"][:70]))
    if len(rows) > 1:
        out.write("\n")
        _table(rows, out)
    by = {}
    for f in kept:
        by[(f["class"], f["view"], f["front"])] = by.get((f["class"], f["view"], f["front"]), 0) + 1
    out.write("\nfindings by class, view and front:\n")
    _table([("class", "view", "front", "findings")] + [k + (n,) for k, n in sorted(by.items())], out)


def _proxy_html(fs, meta):
    e = html_escape
    if meta.get("mode") != "proxy":
        return []
    out = [f"<p>Fronts {e(', '.join(f['name'] for f in meta['fronts']))} forwarding to <b>{e(meta['backend'])}</b>. "
           "Disagreements seen (before deduplication) / findings kept:</p>",
           "<table><tr><th>view</th>" + "".join(f"<th>{e(c)}</th>" for c in CLASSES) + "</tr>"]
    for view, title in VIEW_TITLES.items():
        seen = meta["disagreements"].get(view, {})
        kept = [sum(1 for f in fs if f["view"] == view and f["class"] == c) for c in CLASSES]
        out.append(f"<tr><td>{e(view)}: {e(title)}</td>"
                   + "".join(f"<td>{seen.get(c, 0)} / {k}</td>" for c, k in zip(CLASSES, kept)) + "</tr>")
    out.append("</table>")
    for view, title in VIEW_TITLES.items():
        for cls in CLASSES:
            rows = [f for f in fs if f["view"] == view and f["class"] == cls]
            if not rows:
                continue
            out.append(f"<h2>proxy, {e(view)} view ({e(title)}): {e(cls)}: {len(rows)}</h2>")
            out.append("<table><tr><th>front / detail</th><th>the client's bytes</th><th>the front's answers</th>"
                       "<th>forwarded (per upstream connection) / the back-end's answers</th>"
                       f"<th>{e(meta['oracle'])}, directly</th><th>mutations / rules</th></tr>")
            for f in rows:
                interps = f["interpretations"]
                mine = next((v for k, v in interps.items() if k.startswith(f["front"] + " ")), None)
                direct = next((v for k, v in interps.items() if "directly" in k), None)
                ups = "".join(f"<b>connection {i + 1}</b> (the front meant {u['meant']} messages)"
                              f"<pre>{e(u['forwarded'])}</pre>answered:<pre>{e(u['answered'])}</pre>"
                              for i, u in enumerate(f["upstream"]))
                out.append(f"<tr><td><b>{e(f['front'])} &rarr; {e(f['backend'])}</b><br>{e(f['detail'])}</td>"
                           f"<td><pre>{e(f['bytes'])}</pre>writes: {f['pieces']}</td>"
                           f"<td><pre>{e(_interp(mine)) if mine else ''}</pre></td><td>{ups}</td>"
                           f"<td><pre>{e(_interp(direct)) if direct else ''}</pre></td>"
                           f"<td>{e('; '.join(w for _, w in f['ops']))}<br><i>{e('; '.join(f['rules']))}</i></td></tr>")
            out.append("</table>")
    return out


def html_escape(x):
    return html.escape(str(x))


def _interp(d):
    parts = [f"{s} {b[:80]!r}" for s, b in d["responses"]]
    return "\n".join(parts + [d["end"] + (f": {d['error']}" if d.get("error") else "")])


def unexplained_boundaries(kept, oracle_name, explained_path):
    """Boundary findings that involve the oracle and that explained.json does not explain:
    it is a list of {"target": NAME, "operators": [...], "why": "..."}, each saying why that
    target reads inputs made with those operators otherwise than the oracle."""
    explained = []
    if os.path.exists(explained_path):
        with open(explained_path) as f:
            explained = json.load(f)
    def explained_by(f, x):
        return x["target"] in f["odd"] and set(x["operators"]) <= set(f["operators"])
    return [f for f in kept if f["class"] == "boundary" and any(oracle_name in p for p in f["pairs"])
            and not all(any(explained_by(f, x) for x in explained if x["target"] == t) for t in f["odd"])]
