"""Console table, JSON, JUnit XML and the self-contained HTML report: one section per
layer (server, loop, stream, client), one column per implementation. An implementation
without a layer has n/a in each of its cells there. Every cell carries its verdict's reason;
cases where implementations differ are listed with each reason and the case's note."""
from __future__ import annotations

import html
from xml.sax.saxutils import escape as xml_escape

from .core import AREAS, ERROR, FAIL, LAYERS, LEVELS, NA, PASS, VERDICTS, WARN

SHORT = {PASS: "pass", WARN: "warn", FAIL: "FAIL", NA: "n/a", ERROR: "ERROR"}
BYTES_SHOWN = 4096


def show_bytes(b: bytes, limit=BYTES_SHOWN) -> str:
    """Bytes as readable text: printable ASCII kept, CR/LF shown, the rest escaped."""
    total = len(b)
    out = []
    for c in b[:limit]:
        if c == 13:
            out.append("\\r")
        elif c == 10:
            out.append("\\n\n")
        elif c == 9:
            out.append("\\t")
        elif 32 <= c < 127:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    s = "".join(out)
    if total > limit:
        s += f"\n… (the first {limit} of {total} bytes shown)"
    return s


def result_exchanges(exchanges):
    return [{"sent": show_bytes(e.sent), "received": show_bytes(e.received), "sent_len": len(e.sent),
             "received_len": len(e.received), "outcome": e.describe(), "elapsed": round(e.elapsed, 3)}
            for e in exchanges]


LAYER_TITLE = {"server": "HTTP server layer (contract §1: raw request bytes, exact responses)",
               "loop": "loop layer (contract §3: traces of callbacks, timers, futures, coroutines)",
               "stream": "stream layer (contract §2: stream probe reads under hostile fragmentation and buffer limits)",
               "client": "client layer (contract §4: one fetch against a scripted raw server)"}


TRANSPORT = {"tcp": "plain TCP",
             "tls": "TLS 1.2+: the servers the driver starts serve HTTPS with a certificate of a test CA, "
                    "which it validates (not for --url servers); the same bytes go inside TLS records"}


def layer_title(layer, transport="tcp"):
    """A layer's section title; the server layer's says when it ran over TLS."""
    return LAYER_TITLE[layer] + (" over TLS" if transport == "tls" and layer == "server" else "")


def ordered(cases):
    return sorted(cases, key=lambda c: (AREAS.index(c.area), LEVELS.index(c.level), c.order))


def by_layer(cases):
    """[(layer, its cases in report order)] for the layers that have selected cases."""
    return [(layer, cs) for layer in LAYERS if (cs := [c for c in ordered(cases) if c.layer == layer])]


def summary(cases, impls, results):
    s = {i: {v: 0 for v in VERDICTS} for i in impls}
    for c in cases:
        for i in impls:
            s[i][results[(c.id, i)]["verdict"]] += 1
    return s


def present(c, impls, results):
    """The implementations that have the case's layer."""
    return [i for i in impls if not results[(c.id, i)].get("absent")]


def differs(c, impls, results):
    """Whether implementations that could run the case reached different verdicts."""
    return len({results[(c.id, i)]["verdict"] for i in present(c, impls, results)} - {NA}) > 1


def noteworthy(c, impls, results):
    """Cases the reports explain: implementations differ, or one did not pass."""
    return differs(c, impls, results) or any(results[(c.id, i)]["verdict"] not in (PASS, NA)
                                             for i in present(c, impls, results))


def mark(r):
    return SHORT[r["verdict"]] + ("*" if r["verdict"] in (FAIL, ERROR) and r["required"] else "")


def counts(cs, i, results, s):
    """One implementation's verdict counts in a layer, or why the whole layer is n/a."""
    if all(results[(c.id, i)].get("absent") for c in cs):
        return f"n/a: {results[(cs[0].id, i)]['reason']}"
    return "  ".join(f"{v}={s[i][v]}" for v in VERDICTS)


VERSION_SHOWN = 48   # characters of a version string in the console table (all of it in the files)


def tested(meta):
    """Who was tested: (name, version, description file, profiles) rows."""
    return [(m["name"], m.get("version") or "-", m["description"], ",".join(m["profiles"]))
            for m in meta.get("implementations", [])]


def console(cases, impls, results, out, meta):
    w_i = max(7, *(len(i) for i in impls))
    sections = by_layer(cases)
    transport = meta.get("transport", "tcp")
    rows = [("implementation", "version", "description", "profiles")] + [
        (n, v if len(v) <= VERSION_SHOWN else v[:VERSION_SHOWN - 1] + "…", d, p) for n, v, d, p in tested(meta)]
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    for n, r in enumerate(rows):
        out.write("  ".join(f"{x:<{w}}" for x, w in zip(r, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    out.write(f"transport: {transport} ({TRANSPORT[transport]})\n")
    for layer, cs in sections:
        w_id = max(len(c.id) for c in cs)
        hdr = f"{'case':<{w_id}}  {'level':<8} " + " ".join(f"{i:<{w_i}}" for i in impls) + "  title"
        out.write(f"\n=== {layer_title(layer, transport)}: {len(cs)} cases\n{hdr}\n" + "-" * len(hdr) + "\n")
        area = None
        for c in cs:
            if c.area != area and layer == "server":
                out.write(f"[{c.area}]\n")
            area = c.area
            cells = " ".join(f"{mark(results[(c.id, i)]):<{w_i}}" for i in impls)
            lvl = c.level + ("+T" if c.tornado else "")
            out.write(f"{c.id:<{w_id}}  {lvl:<8} {cells}  {c.title[:60]}\n")
        out.write("-" * len(hdr) + "\n")
        s = summary(cs, impls, results)
        for i in impls:
            out.write(f"{i:<{w_i}}  {counts(cs, i, results, s)}\n")
        notes = [c for c in cs if noteworthy(c, impls, results)]
        if notes:
            out.write(f"\n{layer}: differences and verdicts other than pass, with their reasons:\n")
        for c in notes:
            out.write(f"  {c.id} ({c.level}, {c.source}){' — implementations differ' if differs(c, impls, results) else ''}\n")
            for i in present(c, impls, results):
                r = results[(c.id, i)]
                req = " (required)" if r["required"] and r["verdict"] in (FAIL, ERROR) else ""
                out.write(f"      {i:<{w_i}} {r['verdict']}{req}: {one_line(r['reason'])}\n")
            if c.note:
                out.write(f"      note: {c.note}\n")
    out.write("\n(+T: tagged Tornado semantics; *: a failure on a case required for that implementation)\n")
    if len(sections) > 1:
        out.write("\nsummary per layer:\n")
        for layer, cs in sections:
            s = summary(cs, impls, results)
            for i in impls:
                out.write(f"  {layer:<7} {i:<{w_i}}  {counts(cs, i, results, s)}\n")


def one_line(text):
    """A reason on one line: line breaks shown escaped, every other character kept."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def to_json(cases, impls, results, meta):
    return {
        "meta": meta,
        "implementations": impls,
        "layers": [layer for layer, _ in by_layer(cases)],
        "summary": summary(cases, impls, results),
        "layer_summary": {layer: summary(lcs, impls, results) for layer, lcs in by_layer(cases)},
        "cases": [{
            "id": c.id, "layer": c.layer, "area": c.area, "title": c.title, "source": c.source, "level": c.level,
            "tags": c.tags, "needs": sorted(c.needs), "note": c.note, "differs": differs(c, impls, results),
            "results": {i: results[(c.id, i)] for i in impls},
        } for _, cs in by_layer(cases) for c in cs],
    }


def details_text(r):
    """A result's evidence as text: the exchanged bytes (server) or the transcript."""
    return "\n".join(f"--> {e['sent']}\n<-- {e['received']}" for e in r.get("exchanges", [])) + r.get("transcript", "")


def junit(cases, impls, results, meta):
    """One testsuite per layer: conformance.LAYER (conformance.tls.LAYER over TLS); the
    implementations tested are the properties of each."""
    transport = meta.get("transport", "tcp")
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    props = "".join(f'      <property name="{xml_escape(n, {chr(34): "&quot;"})}" '
                    f'value="{xml_escape(f"{v}; {d}; profiles {p}", {chr(34): "&quot;"})}"/>\n'
                    for n, v, d, p in tested(meta))
    prefix = "conformance.tls" if transport == "tls" else "conformance"
    for layer, cs in by_layer(cases):
        rs = [(c, i, results[(c.id, i)]) for c in cs for i in impls]
        n = {v: sum(1 for _, _, r in rs if r["verdict"] == v) for v in VERDICTS}
        t = sum(r["seconds"] for _, _, r in rs)
        parts.append(f'  <testsuite name="{prefix}.{layer}" tests="{len(rs)}" failures="{n[FAIL]}" '
                     f'errors="{n[ERROR]}" skipped="{n[NA]}" time="{t:.3f}">')
        if props:
            parts.append("    <properties>\n" + props + "    </properties>")
        for c, i, r in rs:
            attrs = (f'classname="{xml_escape(i)}.{c.area}" name="{xml_escape(c.id + " " + c.title, {chr(34): "&quot;"})}" '
                     f'time="{r["seconds"]:.3f}"')
            reason = xml_escape(r["reason"], {'"': "&quot;"})
            detail = xml_escape((f"{c.level} {c.source}; required={r['required']}\n"
                                 + (f"note: {c.note}\n" if c.note else "") + details_text(r))[:20000])
            if r["verdict"] == FAIL:
                parts.append(f'    <testcase {attrs}><failure message="{reason}">{detail}</failure></testcase>')
            elif r["verdict"] == ERROR:
                parts.append(f'    <testcase {attrs}><error message="{reason}">{detail}</error></testcase>')
            elif r["verdict"] == NA:
                parts.append(f'    <testcase {attrs}><skipped message="{reason}"/></testcase>')
            elif r["verdict"] == WARN:
                parts.append(f'    <testcase {attrs}><system-out>warn: {reason}</system-out></testcase>')
            else:
                parts.append(f"    <testcase {attrs}/>")
        parts.append("  </testsuite>")
    parts.append("</testsuites>")
    return "\n".join(parts) + "\n"


COMPACT_FROM = 4   # more implementations than this: compact cells
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}
tr.group th{background:#dde;text-align:left;position:static}
td.pass{background:#d9f2d9}td.warn{background:#fff2c2}td.fail{background:#f8c9c9}
td.na{background:#eee;color:#777}td.error{background:#e8d0f0}
td.req.fail,td.req.error{outline:2px solid #b00;outline-offset:-2px}
.v{font-weight:bold}.why{font-size:12px}.note{font-size:12px;color:#555;font-style:italic}
details summary{cursor:pointer;font-size:12px;color:#336}
pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#fafafa;border:1px solid #ddd;
max-height:300px;overflow:auto;margin:2px 0}
.tag{font-size:11px;background:#ccd;border-radius:3px;padding:0 3px}
.diff{font-size:11px;background:#fdb;border-radius:3px;padding:0 3px}
.sum td{text-align:center}
.sum span{padding:0 4px;border-radius:3px;white-space:nowrap}
span.pass{background:#d9f2d9}span.warn{background:#fff2c2}span.fail{background:#f8c9c9}span.na{color:#777}
span.error{background:#e8d0f0}
table.who{width:auto}
body.only-diff tr.same{display:none}
"""


def html_cell(r, compact=False):
    """A verdict cell; compact (many implementations side by side): the reason on hover and
    in the details, not in the cell."""
    e = html.escape
    cls = r["verdict"].replace("/", "") + (" req" if r["required"] else "")
    det = ""
    if r.get("exchanges"):
        det = "<details><summary>bytes</summary>" + "".join(
            f"<div>request ({x['sent_len']} B):</div><pre>{e(x['sent'])}</pre>"
            f"<div>response ({x['received_len']} B; {e(x['outcome'])}; {x['elapsed']} s):</div><pre>{e(x['received'])}</pre>"
            for x in r["exchanges"]) + "</details>"
    elif r.get("transcript"):
        det = f"<details><summary>transcript</summary><pre>{e(r['transcript'])}</pre></details>"
    if r.get("lint"):
        det += "<details><summary>response lint</summary>" + "".join(
            f"<div>{e(x['level'])} {e(x['rule'])}: {e(x['what'])}</div><pre>{e(x['bytes'])}</pre>"
            for x in r["lint"]) + "</details>"
    if compact:
        if r["verdict"] in (PASS, NA) and not det:
            return f"<td class='{cls}' title='{e(r['reason'])}'>{e(r['verdict'])}</td>"
        return (f"<td class='{cls}' title='{e(r['reason'])}'><details><summary class='v'>{e(r['verdict'])}</summary>"
                f"<div class='why'>{e(r['reason'])}</div>{det.replace('<details><summary>', '<details open><summary>')}"
                "</details></td>")
    return (f"<td class='{cls}' title='{e(r['reason'])}'><span class='v'>{e(r['verdict'])}</span>"
            f"<div class='why'>{e(r['reason'])}</div>{det}</td>")


def html_summary(sections, impls, results):
    """One row per implementation, one cell per layer: its verdict counts, or n/a when it
    lacks the layer (readable with many implementations side by side)."""
    e = html.escape
    head = "<table class='sum'><tr><th>implementation</th>" + "".join(
        f"<th><a href='#layer-{layer}'>{layer}</a> ({len(cs)})</th>" for layer, cs in sections) + "</tr>"
    sums = [(cs, summary(cs, impls, results)) for _, cs in sections]
    rows = []
    for i in impls:
        cells = []
        for cs, s in sums:
            if all(results[(c.id, i)].get("absent") for c in cs):
                cells.append("<td class='na'>n/a</td>")
                continue
            counts = " ".join(f"<span class='{v.replace('/', '')}'>{s[i][v]} {v}</span>"
                              for v in VERDICTS if s[i][v])
            cells.append(f"<td>{counts}</td>")
        rows.append(f"<tr><th>{e(i)}</th>{''.join(cells)}</tr>")
    return head + "".join(rows) + "</table>"


def html_report(cases, impls, results, meta):
    e = html.escape
    sections = by_layer(cases)
    transport = meta.get("transport", "tcp")
    over = " over TLS" if transport == "tls" else ""
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Squall conformance report" + over + "</title>",
           f"<style>{CSS}</style></head><body>",
           "<h1>Squall conformance" + over + ": " + e(", ".join(layer for layer, _ in sections)) + "</h1>",
           f"<p>{e(meta['started'])} · {len(cases)} cases in {meta['seconds']} s · implementations: "
           f"{e(', '.join(impls))} · driver {e(meta['command'])}</p>",
           f"<p>transport: <b>{e(transport)}</b> ({e(TRANSPORT[transport])})</p>",
           "<h2>Implementations tested</h2><table class='who'><tr><th>implementation</th><th>version</th>"
           "<th>description</th><th>profiles</th></tr>"
           + "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>" for row in tested(meta)) + "</table>",
           "<p>Verdicts: <b>pass</b>; <b>warn</b> (allowed by a SHOULD/MAY, but a stricter answer exists, or a "
           "documented difference on a SHOULD/MAY case); <b>fail</b>; <b>n/a</b> (the implementation lacks the layer, "
           "endpoint or feature); <b>error</b> (the driver could not judge). A red outline marks a failure on a case "
           "required for that implementation (MUST, for the rule families its profiles claim). "
           "<span class='diff'>differs</span> marks cases where implementations reached different verdicts; the "
           "note under a case says why. Open a cell to see the bytes or the transcript.</p>",
           "<p><label><input type='checkbox' onchange=\"document.body.classList.toggle('only-diff', this.checked)\">"
           " show only the cases where implementations differ</label></p>",
           "<h2>Summary</h2>", html_summary(sections, impls, results)]
    compact = len(impls) > COMPACT_FROM
    for layer, cs in sections:
        out.append(f"<h2 id='layer-{layer}'>{e(layer_title(layer, transport))}: {len(cs)} cases</h2>")
        out.append("<table><tr><th>case</th><th>level / source</th>" + "".join(f"<th>{e(i)}</th>" for i in impls) + "</tr>")
        group = None
        for c in cs:
            if (c.area, c.level) != group:
                group = (c.area, c.level)
                out.append(f"<tr class='group'><th colspan='{2 + len(impls)}'>{e(c.area)} — {e(c.level)}</th></tr>")
            tag = " <span class='tag'>Tornado semantics</span>" if c.tornado else ""
            d = differs(c, impls, results)
            note = f"<div class='note'>{e(c.note)}</div>" if c.note else ""
            out.append(f"<tr id='{e(c.id)}' class='{'diff' if d else 'same'}'><td><b>{e(c.id)}</b>"
                       f"{' <span class=diff>differs</span>' if d else ''}<br>{e(c.title)}{note}</td>"
                       f"<td>{e(c.level)}<br>{e(c.source)}{tag}</td>")
            out.extend(html_cell(results[(c.id, i)], compact) for i in impls)
            out.append("</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
