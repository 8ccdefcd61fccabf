"""Structure-aware mutations of request streams, aimed at how HTTP/1 is framed and read.

Each operator changes one part of one request of a Stream (messages.py) and names what it
did; `mutate()` applies one to three of them, chosen by a seeded random generator, so a run
is reproducible from its seed. OPERATORS maps every operator to the RFC 9112 section that
governs the part it changes: the section a finding about it relies on.
"""
from __future__ import annotations

import random

from .messages import Header, Stream

WS = [b" ", b"\t", b"  ", b"", b"\x0b", b"\x0c", b"\r", b"\x00"]
EOLS = [b"\n", b"\r", b"\r\r\n", b"\n\r", b" \r\n", b"\r\n\r\n"]
CL_SPELLINGS = [b"+{n}", b"0{n}", b" {n} ", b"{n},{n}", b"{n}, {m}", b"0x{x}", b"{n}.0", b"-{n}", b"{n}a",
                b"18446744073709551616{n}", b"{m}", b"", b"{n} {n}", b"\"{n}\""]
TE_SPELLINGS = [b"Chunked", b" chunked", b"chunked ", b"chunked, identity", b"identity, chunked", b"gzip, chunked",
                b"chunked, chunked", b"chunked;q=1", b"\"chunked\"", b"xchunked", b"chunk", b"\tchunked", b"CHUNKED",
                b"chunked\x00", b",chunked", b"chunked,", b"identity"]
CHUNK_SIZES = [b"0{x}", b"{x} ", b" {x}", b"{x};", b"{x};a=b", b"{x};a=\"b\"", b"0x{x}", b"+{x}", b"-{x}",
               b"ffffffffffffffff{x}", b"{X}", b"{x}\t", b"{x}\x00", b"{y}", b"{x} ;a"]
NAME_CHANGES = [b" ", b"\t", b"_", b"\x00", b"\x7f", b"\xc3\xa9", b"(", b"-", b":"]
VALUE_INSERTS = [b"\x00", b"\r", b"\n", b"\x0b", b"\x7f", b"\xff", b"\r\n ", b"\r\n\t"]
VERSIONS = [b"HTTP/1.0", b"HTTP/1.2", b"http/1.1", b"HTTP/1.10", b"HTTP/01.1", b"HTTP/2.0", b"HTTP/1", b"HTTP/1.1 ",
            b"HTTP /1.1", b"HTTP/1.1\x00", b""]
TARGETS = [b"/echo#frag", b"http://127.0.0.1/echo", b"//echo", b"/echo?a b", b"/ech\x00o", b"*", b"/echo\x7f",
           b"/%65cho", b"echo", b"/echo/../echo"]
METHODS = [b"get", b"GET\x00", b"G ET", b"PROPFIND", b"GE", b"", b"POST", b"HEAD"]


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def _req(rng, s: Stream):
    i = rng.randrange(len(s.requests))
    return i, s.requests[i]


def rl_space(rng, s):
    i, r = _req(rng, s)
    which = rng.choice(("sp1", "sp2"))
    new = _pick(rng, WS)
    setattr(r, which, new)
    return f"rl_space[{i}].{which}={new!r}"


def rl_version(rng, s):
    i, r = _req(rng, s)
    r.version = _pick(rng, VERSIONS)
    return f"rl_version[{i}]={r.version!r}"


def rl_target(rng, s):
    i, r = _req(rng, s)
    if r.target != b"/echo":
        return None
    r.target = _pick(rng, TARGETS)
    return f"rl_target[{i}]={r.target!r}"


def rl_method(rng, s):
    i, r = _req(rng, s)
    r.method = _pick(rng, METHODS)
    return f"rl_method[{i}]={r.method!r}"


def eol(rng, s):
    i, r = _req(rng, s)
    new = _pick(rng, EOLS)
    spots = ["eol", "end"] + [k for k in range(len(r.headers))]
    spot = rng.choice(spots)
    if spot in ("eol", "end"):
        setattr(r, spot, new)
    else:
        r.headers[spot].eol = new
    return f"eol[{i}].{spot}={new!r}"


def hdr_sep(rng, s):
    i, r = _req(rng, s)
    if not r.headers:
        return None
    k = rng.randrange(len(r.headers))
    h = r.headers[k]
    h.sep = _pick(rng, [b":", b" :", b"\t:", b":\t", b":  ", b": \t", b"::", b" : ", b":\x0b"])
    return f"hdr_sep[{i}].{h.name.decode('latin-1')}={h.sep!r}"


def hdr_name(rng, s):
    i, r = _req(rng, s)
    if not r.headers:
        return None
    k = rng.randrange(len(r.headers))
    h = r.headers[k]
    ch = _pick(rng, NAME_CHANGES)
    pos = rng.randrange(len(h.name) + 1)
    old = h.name
    h.name = h.name[:pos] + ch + h.name[pos:] if rng.random() < 0.7 else h.name.replace(b"-", ch, 1)
    return f"hdr_name[{i}].{old.decode('latin-1')}={h.name!r}"


def hdr_value(rng, s):
    i, r = _req(rng, s)
    if not r.headers:
        return None
    k = rng.randrange(len(r.headers))
    h = r.headers[k]
    ins = _pick(rng, VALUE_INSERTS)
    pos = rng.randrange(len(h.value) + 1)
    h.value = h.value[:pos] + ins + h.value[pos:]
    return f"hdr_value[{i}].{h.name.decode('latin-1')}+{ins!r}@{pos}"


def obs_fold(rng, s):
    i, r = _req(rng, s)
    if not r.headers:
        return None
    h = r.headers[rng.randrange(len(r.headers))]
    fold = _pick(rng, [b"\r\n ", b"\r\n\t", b"\n ", b"\r\n  "])
    if rng.random() < 0.5:
        h.sep = h.sep + fold          # the value starts on a continuation line
    else:
        h.value = h.value + fold + b"x"
    return f"obs_fold[{i}].{h.name.decode('latin-1')}={fold!r}"


def dup_framing(rng, s):
    i, r = _req(rng, s)
    cl, te = r.header(b"content-length"), r.header(b"transfer-encoding")
    choice = rng.randrange(5)
    if choice == 0 and cl:
        r.headers.append(Header(b"Content-Length", cl.value))
        return f"dup_framing[{i}]=CL twice same"
    if choice == 1 and cl:
        r.headers.insert(rng.randrange(len(r.headers) + 1), Header(b"Content-Length", b"%d" % (len(r.body) + 3)))
        return f"dup_framing[{i}]=CL twice different"
    if choice == 2 and cl:
        r.headers.insert(rng.randrange(len(r.headers) + 1), Header(b"Transfer-Encoding", b"chunked"))
        return f"dup_framing[{i}]=CL+TE"
    if choice == 3 and te:
        r.headers.insert(rng.randrange(len(r.headers) + 1), Header(b"Content-Length", b"%d" % rng.randrange(0, 12)))
        return f"dup_framing[{i}]=TE+CL"
    if choice == 4 and te:
        r.headers.append(Header(b"Transfer-Encoding", _pick(rng, [b"chunked", b"identity", b"x"])))
        return f"dup_framing[{i}]=TE twice"
    return None


def cl_spelling(rng, s):
    i, r = _req(rng, s)
    h = r.header(b"content-length")
    if h is None:
        return None
    n = len(r.body)
    h.value = _pick(rng, CL_SPELLINGS).replace(b"{n}", b"%d" % n).replace(b"{m}", b"%d" % (n + 2)).replace(
        b"{x}", b"%x" % n)
    return f"cl_spelling[{i}]={h.value!r}"


def te_spelling(rng, s):
    i, r = _req(rng, s)
    h = r.header(b"transfer-encoding")
    if h is None:
        return None
    h.value = _pick(rng, TE_SPELLINGS)
    return f"te_spelling[{i}]={h.value!r}"


def _chunk_lines(body: bytes):
    """Offsets of the chunk-size lines of a chunked body (start, end of the size text)."""
    out, p = [], 0
    while p < len(body):
        nl = body.find(b"\r\n", p)
        if nl < 0:
            break
        size_text = body[p:nl].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            break
        out.append((p, nl, size))
        if size == 0:
            break
        p = nl + 2 + size + 2
    return out


def chunk_size(rng, s):
    i, r = _req(rng, s)
    if r.header(b"transfer-encoding") is None:
        return None
    lines = _chunk_lines(r.body)
    if not lines:
        return None
    a, b, size = _pick(rng, lines)
    new = _pick(rng, CHUNK_SIZES).replace(b"{x}", b"%x" % size).replace(b"{X}", b"%X" % size).replace(
        b"{y}", b"%x" % (size + 3))
    r.body = r.body[:a] + new + r.body[b:]
    return f"chunk_size[{i}]={new!r}"


def chunk_terminator(rng, s):
    i, r = _req(rng, s)
    if r.header(b"transfer-encoding") is None:
        return None
    lines = [x for x in _chunk_lines(r.body) if x[2] > 0]
    if not lines:
        return None
    a, b, size = _pick(rng, lines)
    end = b + 2 + size
    new = _pick(rng, [b"", b"\n", b"\r", b"XX", b"\r\n\r\n"])
    r.body = r.body[:end] + new + r.body[end + 2:]
    return f"chunk_terminator[{i}]={new!r}"


def chunk_ext(rng, s):
    i, r = _req(rng, s)
    if r.header(b"transfer-encoding") is None:
        return None
    lines = _chunk_lines(r.body)
    if not lines:
        return None
    a, b, size = _pick(rng, lines)
    ext = _pick(rng, [b";a", b";a=b", b";a=\"b;c\"", b" ; a=b", b";a=\"b\r\nc\"", b";a\n", b";" + b"e" * 200])
    r.body = r.body[:b] + ext + r.body[b:]
    return f"chunk_ext[{i}]={ext[:20]!r}"


def trailer(rng, s):
    i, r = _req(rng, s)
    if r.header(b"transfer-encoding") is None or not r.body.endswith(b"0\r\n\r\n"):
        return None
    field = _pick(rng, [b"X-T: 1", b"Content-Length: 5", b"Transfer-Encoding: chunked", b"X-T 1", b" X-T: 1",
                        b"Host: evil", b"X-T: \x00"])
    r.body = r.body[:-2] + field + b"\r\n\r\n"
    return f"trailer[{i}]={field!r}"


def body_length(rng, s):
    i, r = _req(rng, s)
    if not r.body:
        return None
    choice = rng.randrange(3)
    if choice == 0:
        r.body = r.body[:-1]
        return f"body_length[{i}]=one byte short"
    if choice == 1:
        r.body = r.body + _pick(rng, [b"X", b"\r\n", b"0\r\n\r\n"])
        return f"body_length[{i}]=bytes after the body"
    r.body = b""
    return f"body_length[{i}]=no body"


def split(rng, s):
    data_len = len(s.to_bytes())
    s.splits = sorted(rng.randrange(1, max(2, data_len)) for _ in range(rng.randrange(1, 5)))
    return f"split@{','.join(map(str, s.splits))}"


# operator -> (function, the RFC 9112 section governing what it changes)
OPERATORS = {
    "rl_space": (rl_space, "RFC 9112 §3"),
    "rl_version": (rl_version, "RFC 9112 §2.3"),
    "rl_target": (rl_target, "RFC 9112 §3.2"),
    "rl_method": (rl_method, "RFC 9112 §3.1"),
    "eol": (eol, "RFC 9112 §2.2"),
    "hdr_sep": (hdr_sep, "RFC 9112 §5.1"),
    "hdr_name": (hdr_name, "RFC 9110 §5.1"),
    "hdr_value": (hdr_value, "RFC 9110 §5.5"),
    "obs_fold": (obs_fold, "RFC 9112 §5.2"),
    "dup_framing": (dup_framing, "RFC 9112 §6.1, §6.3"),
    "cl_spelling": (cl_spelling, "RFC 9112 §6.3; RFC 9110 §8.6"),
    "te_spelling": (te_spelling, "RFC 9112 §6.1"),
    "chunk_size": (chunk_size, "RFC 9112 §7.1"),
    "chunk_terminator": (chunk_terminator, "RFC 9112 §7.1"),
    "chunk_ext": (chunk_ext, "RFC 9112 §7.1.1"),
    "trailer": (trailer, "RFC 9112 §7.1.2"),
    "body_length": (body_length, "RFC 9112 §6.3"),
    "split": (split, "RFC 9112 §2.1 (one message however it is cut into writes)"),
}


def mutate(rng: random.Random, seed: Stream) -> Stream:
    """A mutated copy of `seed`: one operator most of the time (so that a disagreement has
    one cause), sometimes two or three, in order."""
    s = seed.clone()
    s.ops = []
    names = list(OPERATORS)
    want = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    for _ in range(50):
        if len(s.ops) >= want:
            break
        name = _pick(rng, names)
        what = OPERATORS[name][0](rng, s)
        if what:
            s.ops.append((name, what))
    return s


def rules(ops) -> list[str]:
    """The RFC sections of the operators applied."""
    return sorted({OPERATORS[name][1] for name, _ in ops})
