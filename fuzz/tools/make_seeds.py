#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the messages below.

Each target reads a few "choice" bytes from the front of its input (see the comment at
the top of fuzz/targets/<target>_fuzzer.cc), then the payload; the seeds are those
prefixes plus real messages: a minimal wrk GET, a browser GET, the TechEmpower plaintext
request, chunked and multipart bodies, and request-smuggling attempts. Re-run after
editing: python3 fuzz/tools/make_seeds.py (it only adds or overwrites seed-*.bin files).
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

WRK_GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER_GET = (
    b"GET /static/app.js?v=3&lang=en HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example.com/index.html\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=abc123; theme=\"dark\"; _ga=GA1.2.3.4\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    b"Cache-Control: max-age=0\r\n\r\n"
)
TECHEMPOWER = (
    b"GET /plaintext HTTP/1.1\r\n"
    b"Host: server\r\n"
    b"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    b"Connection: keep-alive\r\n\r\n"
)
POST_CL = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\na=1&b=x+y%21"
CHUNK_BODY = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
POST_CHUNKED = b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNK_BODY
MULTIPART = (
    b"--b\r\n"
    b"Content-Disposition: form-data; name=\"field\"\r\n\r\n"
    b"value\r\n"
    b"--b\r\n"
    b"Content-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
    b"Content-Type: text/plain\r\n\r\n"
    b"file body\r\n"
    b"--b--\r\n"
)
MULTIPART_2231 = (
    b"--b\r\n"
    b"Content-Disposition: form-data; name=\"f\"; filename*=utf-8''na%C3%AFve.txt\r\n\r\n"
    b"x\r\n--b--\r\n"
)
POST_MULTIPART = (
    b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    b"Content-Length: %d\r\n\r\n" % len(MULTIPART)
) + MULTIPART
SMUGGLING = [
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"\r\n\"\r\nx\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n folded: value\r\nX: a\r\n  b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\n\nGET /second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNK_BODY,
    b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil close",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.1 301\r\nLocation: /a\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 25\r\n\r\n"
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
]
REQUESTS = [WRK_GET, BROWSER_GET, TECHEMPOWER, POST_CL, POST_CHUNKED, POST_MULTIPART] + SMUGGLING


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-%s.bin" % name), "wb") as f:
        f.write(data)


def head_of(msg):
    i = msg.find(b"\r\n\r\n")
    return msg if i < 0 else msg[: i + 4]


for i, m in enumerate(REQUESTS):
    write("header", "req%02d" % i, b"\x00" + head_of(m))
    write("header", "req%02d-limits" % i, b"\x06\x04\x00\x40\x00\x40" + head_of(m))
    # connection: [flags][n_sizes][sizes...]; one piece, then 3-byte-ish fragments
    write("connection", "req%02d" % i, b"\x00\x00" + m)
    write("connection", "req%02d-split" % i, b"\x08\x03\x00\x04\x09" + m)
# pipelining: three requests back to back
write("connection", "pipeline", b"\x00\x00" + WRK_GET + TECHEMPOWER + POST_CHUNKED)
for i, m in enumerate(RESPONSES):
    write("header", "resp%02d" % i, b"\x02" + head_of(m))
    # response: [flags][max_body 2][n_sizes][sizes...]
    write("response", "resp%02d" % i, b"\x00\x00\x00\x00" + m)
    write("response", "resp%02d-split" % i, b"\x12\x00\x00\x02\x00\x06" + m)
    write("response", "resp%02d-gzip" % i, b"\x02\x00\x00\x00" + m)

# chunk: [max_body 2][max_data][flag][max_trailer_fields][flag][n_sizes][sizes...] + chunked body
CHUNKED = [
    CHUNK_BODY,
    b"0\r\n\r\n",
    b"1\r\na\r\n0\r\n\r\n",
    b"A;name=\"quoted;value\"\r\n0123456789\r\n0\r\n\r\n",
    b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    b"3\r\nabcX\r\n0\r\n\r\n",
    b"3\nabc\n0\n\n",
    b"2\r\nab\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
    b"-1\r\nx\r\n0\r\n\r\n",
    b"4 \r\nabcd\r\n0\r\n\r\n",
]
for i, b in enumerate(CHUNKED):
    write("chunk", "c%02d" % i, b"\x00\x00\x3f\x00\x08\x00\x00" + b)
    write("chunk", "c%02d-split" % i, b"\x00\x00\x04\x01\x02\x01\x03\x01\x05\x02" + b)

# regex: [mode][pattern][max_bytes 2][read_chunk_size][n_sizes][sizes...] + payload
for i, m in enumerate([WRK_GET, BROWSER_GET, POST_CHUNKED, POST_MULTIPART, b"abc\r\n", b"12;34;\n"]):
    for p in range(10):
        write("regex", "m%d-re%d" % (i, p), bytes([0, p, 0, 0, 0xff, 2, 0, 7]) + m)
    for d in range(6):
        write("regex", "m%d-until%d" % (i, d), bytes([1, d, 0, 0x40, 3, 0]) + m)

QUERIES = [b"a=1&b=2", b"q=hello+world&lang=en&lang=fr", b"x=%E2%9C%93&y=%zz&z=%4", b"a&&b=&=c&;d=e", b"v=" + b"%41" * 10]
for i, q in enumerate(QUERIES):
    write("query", "q%d" % i, b"\x00" + q)
    write("url_unquote", "q%d" % i, b"\x01" + q)
write("url_unquote", "path", b"\x00/static/a%20b%2Fc%%41")

FORMS = [(0, b"a=1&b=x+y%21&c"), (1, MULTIPART), (1, MULTIPART_2231),
         (2, MULTIPART.replace(b"--b", b"------WebKitFormBoundary7MA4YWxkTrZu0gW")),
         (3, b"multipart/form-data; boundary=\"b\"\n" + MULTIPART),
         (3, b"application/x-www-form-urlencoded; charset=utf-8\na=%C3%A9"),
         (3, b"text/plain\nignored"), (0x80, b"a=1")]
for i, (mode, body) in enumerate(FORMS):
    write("form", "f%d" % i, bytes([mode]) + body)

COOKIES = [b"session=abc123; theme=\"dark\"; _ga=GA1.2.3.4", b"a=1; a=2; novalue; =x; ;",
           b"q=\"\\\"quoted\\\" \\101\\102\"", b"  spaced  =  v  ; expires=Thu"]
for i, c in enumerate(COOKIES):
    write("cookie", "c%d" % i, c)

PARAMS = [b"Sun, 06 Nov 1994 08:49:37 GMT", b"Sunday, 06-Nov-94 08:49:37 GMT", b"Sun Nov  6 08:49:37 1994",
          b"text/html; charset=utf-8", b"form-data; name=\"f\"; filename*=utf-8''na%C3%AFve.txt",
          b"attachment; name*0=\"a\"; name*1*=%41", b"example.com:8080", b"[::1]:99999", b"host:"]
for i, p in enumerate(PARAMS):
    write("params", "p%d" % i, p)
