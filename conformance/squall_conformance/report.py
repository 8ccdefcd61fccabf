"""Console table, JSON, JUnit XML and the self-contained HTML report."""
from __future__ import annotations

import html
import json
import time
from xml.sax.saxutils import escape as xml_escape

from .core import AREAS, ERROR, FAIL, LEVELS, NA, PASS, VERDICTS, WARN

SHORT = {PASS: "pass", WARN: "warn", FAIL: "FAIL", NA: "n/a", ERROR: "ERROR"}
BYTES_SHOWN = 4096


def show_bytes(b: bytes, limit=BYTES_SHOWN) -> str:
    """Bytes as readable text: printable ASCII kept, CR/LF shown, the rest escaped."""
    cut = len(b) > limit
    b = b[:limit]
    out = []
    for c in b:
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
    if cut:
        s += f"\n… ({len(b)} of more bytes shown)"
    return s


def result_exchanges(exchanges):
    return [{"sent": show_bytes(e.sent), "received": show_bytes(e.received), "sent_len": len(e.sent),
             "received_len": len(e.received), "outcome": e.describe(), "elapsed": round(e.elapsed, 3)}
            for e in exchanges]


def summary(results, impls):
    s = {i: {v: 0 for v in VERDICTS} for i in impls}
    for (cid, impl), r in results.items():
        s[impl][r["verdict"]] += 1
    return s


def ordered(cases):
    return sorted(cases, key=lambda c: (AREAS.index(c.area), LEVELS.index(c.level), c.id))


def console(cases, impls, results, out):
    w_id = max(len(c.id) for c in cases)
    w_i = max(7, *(len(i) for i in impls))
    hdr = f"{'case':<{w_id}}  {'level':<6} " + " ".join(f"{i:<{w_i}}" for i in impls) + "  title"
    out.write(hdr + "\n" + "-" * len(hdr) + "\n")
    area = None
    for c in ordered(cases):
        if c.area != area:
            area = c.area
            out.write(f"[{area}]\n")
        cells = []
        for i in impls:
            r = results[(c.id, i)]
            mark = SHORT[r["verdict"]] + ("*" if r["verdict"] in (FAIL, ERROR) and r["required"] else "")
            cells.append(f"{mark:<{w_i}}")
        lvl = c.level + ("+T" if c.tornado else "")
        out.write(f"{c.id:<{w_id}}  {lvl:<6} " + " ".join(cells) + f"  {c.title[:60]}\n")
    out.write("-" * len(hdr) + "\n")
    s = summary(results, impls)
    for i in impls:
        out.write(f"{i:<{w_i}}  " + "  ".join(f"{v}={s[i][v]}" for v in VERDICTS) + "\n")
    out.write("(+T: tagged Tornado semantics; *: required for that implementation)\n")
    bad = [(c, i, results[(c.id, i)]) for c in ordered(cases) for i in impls
           if results[(c.id, i)]["verdict"] in (FAIL, ERROR)]
    if bad:
        out.write("\nfailures and errors:\n")
        for c, i, r in bad:
            out.write(f"  {i:<{w_i}} {c.id:<{w_id}} {r['verdict']}{' (required)' if r['required'] else ''}: {r['reason']}\n")


def to_json(cases, impls, results, meta):
    return {
        "meta": meta,
        "implementations": impls,
        "summary": summary(results, impls),
        "cases": [{
            "id": c.id, "area": c.area, "title": c.title, "source": c.source, "level": c.level,
            "tags": c.tags, "needs": sorted(c.needs),
            "results": {i: results[(c.id, i)] for i in impls},
        } for c in ordered(cases)],
    }


def junit(cases, impls, results):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for i in impls:
        rs = [(c, results[(c.id, i)]) for c in ordered(cases)]
        nf = sum(1 for _, r in rs if r["verdict"] == FAIL)
        ne = sum(1 for _, r in rs if r["verdict"] == ERROR)
        ns = sum(1 for _, r in rs if r["verdict"] == NA)
        t = sum(r["seconds"] for _, r in rs)
        parts.append(f'  <testsuite name="conformance.{xml_escape(i)}" tests="{len(rs)}" failures="{nf}" '
                     f'errors="{ne}" skipped="{ns}" time="{t:.3f}">')
        for c, r in rs:
            attrs = f'classname="{xml_escape(i)}.{c.area}" name="{xml_escape(c.id + " " + c.title, {chr(34): "&quot;"})}" time="{r["seconds"]:.3f}"'
            reason = xml_escape(r["reason"], {'"': "&quot;"})
            detail = xml_escape(f"{c.level} {c.source}; required={r['required']}\n" + "\n".join(
                f"--> {e['sent']}\n<-- {e['received']}" for e in r["exchanges"])[:20000])
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


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}
tr.group th{background:#dde;text-align:left;position:static}
td.pass{background:#d9f2d9}td.warn{background:#fff2c2}td.fail{background:#f8c9c9}
td.na{background:#eee;color:#777}td.error{background:#e8d0f0}
td.req.fail,td.req.error{outline:2px solid #b00;outline-offset:-2px}
.v{font-weight:bold}.why{font-size:12px}
details summary{cursor:pointer;font-size:12px;color:#336}
pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#fafafa;border:1px solid #ddd;
max-height:300px;overflow:auto;margin:2px 0}
.tag{font-size:11px;background:#ccd;border-radius:3px;padding:0 3px}
.sum td{text-align:center}
"""


def html_report(cases, impls, results, meta):
    e = html.escape
    s = summary(results, impls)
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Squall conformance report</title>",
           f"<style>{CSS}</style></head><body>",
           "<h1>Squall conformance: HTTP server layer</h1>",
           f"<p>{e(meta['started'])} · {len(cases)} cases · implementations: {e(', '.join(impls))} · "
           f"driver {e(meta['command'])}</p>",
           "<p>Verdicts: <b>pass</b>; <b>warn</b> (allowed by a SHOULD/MAY, but a stricter answer exists); "
           "<b>fail</b>; <b>n/a</b> (the implementation lacks the endpoint or feature); <b>error</b> (the driver "
           "could not judge). A red outline marks a failure on a case required for that implementation (MUST, or "
           "tagged Tornado semantics for reference and tornado). Open a cell to see the bytes.</p>",
           "<table class='sum'><tr><th>implementation</th>" + "".join(f"<th>{v}</th>" for v in VERDICTS) + "</tr>"]
    for i in impls:
        out.append(f"<tr><th>{e(i)}</th>" + "".join(f"<td class='{v.replace('/', '')}'>{s[i][v]}</td>" for v in VERDICTS) + "</tr>")
    out.append("</table><h2>Cases</h2><table><tr><th>case</th><th>level / source</th>"
               + "".join(f"<th>{e(i)}</th>" for i in impls) + "</tr>")
    group = None
    for c in ordered(cases):
        if (c.area, c.level) != group:
            group = (c.area, c.level)
            out.append(f"<tr class='group'><th colspan='{2 + len(impls)}'>{e(c.area)} — {e(c.level)}</th></tr>")
        tag = f" <span class='tag'>Tornado semantics</span>" if c.tornado else ""
        out.append(f"<tr id='{e(c.id)}'><td><b>{e(c.id)}</b><br>{e(c.title)}</td><td>{e(c.level)}<br>{e(c.source)}{tag}</td>")
        for i in impls:
            r = results[(c.id, i)]
            cls = r["verdict"].replace("/", "") + (" req" if r["required"] else "")
            det = ""
            if r["exchanges"]:
                det = "<details><summary>bytes</summary>" + "".join(
                    f"<div>request ({x['sent_len']} B):</div><pre>{e(x['sent'])}</pre>"
                    f"<div>response ({x['received_len']} B; {e(x['outcome'])}; {x['elapsed']} s):</div><pre>{e(x['received'])}</pre>"
                    for x in r["exchanges"]) + "</details>"
            out.append(f"<td class='{cls}' title='{e(r['reason'])}'><span class='v'>{e(r['verdict'])}</span>"
                       f"<div class='why'>{e(r['reason'])}</div>{det}</td>")
        out.append("</tr>")
    out.append("</table></body></html>")
    return "\n".join(out)
