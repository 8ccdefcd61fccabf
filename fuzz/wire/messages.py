"""HTTP/1.1 request streams as structures the mutators can take apart, and the seed corpus.

A Stream is a list of Requests sent on one connection, then cut into the pieces that are
written one by one (split points across TCP writes). Each Request keeps its parts apart —
method, target, version, the separators of the request line, header lines (name, the bytes
between name and value, value), line endings, and a body with its framing — so that a
mutator can change one part and serialise the rest exactly as it was. Every request goes to
an endpoint that shows what the server understood: `POST /` echoes the body (where the
message ends), `/echo` lists the header fields as delivered.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field


@dataclass
class Header:
    name: bytes
    value: bytes
    sep: bytes = b": "          # between name and value (": ", ":", " : ", ":\t" ...)
    eol: bytes = b"\r\n"


@dataclass
class Request:
    method: bytes = b"GET"
    target: bytes = b"/echo"
    version: bytes = b"HTTP/1.1"
    sp1: bytes = b" "
    sp2: bytes = b" "
    eol: bytes = b"\r\n"             # after the request line
    headers: list = field(default_factory=list)
    end: bytes = b"\r\n"             # the empty line closing the head
    body: bytes = b""                # serialised as is (framing fields are headers like any other)

    def to_bytes(self) -> bytes:
        head = self.method + self.sp1 + self.target + self.sp2 + self.version + self.eol
        head += b"".join(h.name + h.sep + h.value + h.eol for h in self.headers)
        return head + self.end + self.body

    def header(self, name: bytes):
        for h in self.headers:
            if h.name.lower() == name.lower():
                return h
        return None


@dataclass
class Stream:
    requests: list
    splits: list = field(default_factory=list)   # byte offsets where a new write starts
    ops: list = field(default_factory=list)      # the mutations applied, for dedup and reports

    def to_bytes(self) -> bytes:
        return b"".join(r.to_bytes() for r in self.requests)

    def pieces(self) -> list[bytes]:
        data = self.to_bytes()
        cuts = sorted({c for c in self.splits if 0 < c < len(data)})
        return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]

    def methods(self):
        return tuple(r.method.decode("latin-1", "replace") for r in self.requests)

    def clone(self) -> "Stream":
        return copy.deepcopy(self)


def chunked_body(*pieces: bytes, trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n" + trailers + b"\r\n"


def host():
    return Header(b"Host", b"127.0.0.1")


def get_echo(probe=b"1"):
    return Request(b"GET", b"/echo", headers=[host(), Header(b"X-Probe", probe)])


def post_cl(body=b"hello"):
    return Request(b"POST", b"/", headers=[host(), Header(b"Content-Length", b"%d" % len(body))], body=body)


def post_chunked(*pieces, trailers=b""):
    pieces = pieces or (b"hello",)
    return Request(b"POST", b"/", headers=[host(), Header(b"Transfer-Encoding", b"chunked")],
                   body=chunked_body(*pieces, trailers=trailers))


HIDDEN = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Hidden: 1\r\n\r\n"


def seeds() -> list[Stream]:
    """The seed corpus: the forms a request stream takes, each followed by a probe request
    whose answer shows where the server thinks the previous message ended."""
    return [
        Stream([get_echo(b"a"), get_echo(b"b")]),
        Stream([post_cl(b"hello"), get_echo()]),
        Stream([post_cl(b""), get_echo()]),
        Stream([post_chunked(b"hello"), get_echo()]),
        Stream([post_chunked(b"he", b"llo", trailers=b"X-Trailer: t\r\n"), get_echo()]),
        Stream([post_chunked(b"x" * 17), post_cl(b"abc"), get_echo()]),
        Stream([Request(b"GET", b"/echo", headers=[host(), Header(b"X-A", b"1"), Header(b"X-A", b"2"),
                                                    Header(b"Cookie", b"a=1; b=2")]), get_echo()]),
        Stream([Request(b"GET", b"/echo", b"HTTP/1.0", headers=[host(), Header(b"Connection", b"keep-alive")]),
                get_echo()]),
        Stream([Request(b"POST", b"/", headers=[host(), Header(b"Content-Length", b"3"),
                                                 Header(b"Expect", b"100-continue")], body=b"abc"), get_echo()]),
        Stream([Request(b"OPTIONS", b"*", headers=[host()]), get_echo()]),
        # Smuggling shapes: read as the framing says, these bodies are just bytes; a reader
        # that takes the other framing field (which a mutation adds) sees a hidden request.
        Stream([post_cl(b"0\r\n\r\n" + HIDDEN), get_echo()]),
        Stream([post_chunked(HIDDEN), get_echo()]),
    ]


def random_splits(rng: random.Random, data_len: int, max_pieces: int = 4) -> list[int]:
    n = rng.randrange(0, max_pieces)
    return sorted(rng.randrange(1, max(2, data_len)) for _ in range(n))
