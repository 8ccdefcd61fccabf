"""Stream layer (CONTRACTS.md §2): scripted exchanges with a stream probe over 127.0.0.1.

A case is a script of steps run on one connection:
  ("send", bytes)  ("sleep", seconds)  ("shut",)  half-close the sending side
  ("expect", bytes)   the next reply bytes, exactly
  ("eof",)            the probe closes the connection (nothing more arrives)
  ("closed",)         the probe closes the connection (whatever it sent before)
  ("closed_no_ok",)   a read that cannot complete: the probe closes without an "ok" reply,
                      after at most one "err <reason>" line (CONTRACTS.md §2: any reason, or
                      none, is allowed)
  ("names", line)     as closed_no_ok, and the precise reply is `line` (e.g. b"err buffer-full\n",
                      optional in CONTRACTS.md §2): another err line or a bare close is a warning
  ("ok_prefix", data, most)  an "ok <len>" reply with 0 < len <= most, the first len bytes of data
  ("reconnect",)      close this connection and continue on a new one
Expectations follow Tornado's IOStream (Tornado semantics) and the contract's replies. The
buffer cases run against a second probe started with --max-buffer-size BUFFER (an optional
flag: n/a for a probe whose --help lacks it).
"""
import random
import re
import socket
import time

from ..core import TORNADO, case, error, mismatch, na, ok as passed, warn

CONTRACT = "contracts.md §2"
STEP_TIMEOUT = 5.0
DELAY = 0.003  # between hostile fragments
# The replies of CONTRACTS.md §2: "ok <len>" + the bytes, or one "err <reason>" line then a
# close. REASONS are the reasons the document defines (unsatisfiable is required where a
# case expects it; the others are optional precise replies).
REASONS = ("unsatisfiable", "closed", "buffer-full", "command")
ERR_LINE = re.compile(rb"err [^\n]+\n")


def h(b):
    return b.hex()


def ok(data):
    return ("expect", b"ok %d\n" % len(data) + data)


def err_unsat():
    return [("expect", b"err unsatisfiable\n"), ("eof",)]


def bytewise(data, delay=DELAY):
    steps = []
    for i in range(len(data)):
        steps += [("send", data[i:i + 1]), ("sleep", delay)]
    return steps


def pieces(*parts, delay=0.02):
    steps = []
    for p in parts:
        steps += [("send", p), ("sleep", delay)]
    return steps


def end():
    """Finish a connection cleanly: an empty close command."""
    return [("send", b"close\n"), ("shut",), ok(b""), ("eof",)]


RNG = random.Random(6)
BIN = bytes(range(256))
MIB4 = RNG.randbytes(4 << 20)
MIB1 = bytes(RNG.choice(b"abcdefghij") for _ in range(1 << 20))  # no delimiter inside

HTTP_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

# (id, title, source, level, steps[, note]).
SPECS = [
    # ---- bytes ----
    ("bytes-one-write", "bytes N with command and data in one write", CONTRACT, "MUST",
     [("send", b"bytes 5\nhello")] + [ok(b"hello")] + end()),
    ("bytes-bytewise", "bytes N with the data one byte at a time", CONTRACT, "MUST",
     [("send", b"bytes 10\n")] + bytewise(b"0123456789") + [ok(b"0123456789")] + end()),
    ("bytes-command-bytewise", "the command line itself one byte at a time", CONTRACT, "MUST",
     bytewise(b"bytes 3\nabc") + [ok(b"abc")] + end()),
    ("bytes-zero", "bytes 0 completes at once with nothing", TORNADO, "MUST",
     [("send", b"bytes 0\n"), ok(b"")] + end()),
    ("bytes-surplus-kept", "surplus data stays buffered for the next command", CONTRACT, "MUST",
     [("send", b"bytes 3\nabcbytes 2\nxyclose\n"), ("shut",), ok(b"abc"), ok(b"xy"), ok(b""), ("eof",)]),
    ("bytes-pipelined-many", "ten pipelined commands in one write", CONTRACT, "MUST",
     [("send", b"".join(b"bytes 4\n%04d" % i for i in range(10)))] +
     [ok(b"%04d" % i) for i in range(10)] + end()),
    ("bytes-binary", "bytes N with every byte value 0x00-0xff", CONTRACT, "MUST",
     [("send", b"bytes 256\n" + BIN), ok(BIN)] + end()),
    ("bytes-split-reads", "bytes N arriving in three writes", CONTRACT, "MUST",
     [("send", b"bytes 9\n")] + pieces(b"abc", b"def", b"ghi") + [ok(b"abcdefghi")] + end()),
    ("bytes-4mib-one-write", "bytes 4 MiB in one write", CONTRACT, "MUST",
     [("send", b"bytes %d\n" % len(MIB4) + MIB4), ok(MIB4)] + end()),
    ("bytes-4mib-chunks", "bytes 4 MiB in 64 KiB writes", CONTRACT, "MUST",
     [("send", b"bytes %d\n" % len(MIB4))] +
     [("send", MIB4[i:i + 65536]) for i in range(0, len(MIB4), 65536)] + [ok(MIB4)] + end()),
    ("bytes-peer-closes-early", "peer half-closes before N bytes arrived: no ok, the probe closes", TORNADO,
     "MUST", [("send", b"bytes 10\nabc"), ("shut",), ("closed_no_ok",)]),
    ("bytes-buffered-then-close", "bytes already buffered are delivered although the peer closed", TORNADO,
     "MUST", [("send", b"bytes 3\nabc"), ("shut",), ok(b"abc"), ("eof",)]),
    # ---- partial ----
    ("partial-some", "partial N returns what arrived (fewer than N)", TORNADO, "MUST",
     [("send", b"partial 10\n"), ("sleep", 0.05), ("send", b"xy"), ok(b"xy")] + end()),
    ("partial-more-than-n", "partial N with more buffered returns exactly N, keeps the rest", TORNADO, "MUST",
     [("send", b"partial 4\nabcdbytes 2\nxy"), ok(b"abcd"), ok(b"xy")] + end()),
    ("partial-bytewise", "partial N with one byte arriving returns that byte", TORNADO, "MUST",
     [("send", b"partial 10\n"), ("sleep", 0.05), ("send", b"a"), ok(b"a"),
      ("send", b"partial 10\n"), ("sleep", 0.05), ("send", b"b"), ok(b"b")] + end()),
    # ---- until ----
    ("until-one-write", "until with data and delimiter in one write", CONTRACT, "MUST",
     [("send", b"until 0d0a 100\nhello\r\n"), ok(b"hello\r\n")] + end()),
    ("until-bytewise", "until with the data one byte at a time", CONTRACT, "MUST",
     [("send", b"until 0d0a0d0a 100\n")] + bytewise(HTTP_HEAD) + [ok(HTTP_HEAD)] + end()),
    ("until-delim-split", "until with the delimiter split across writes", CONTRACT, "MUST",
     [("send", b"until 0d0a0d0a 100\n")] + pieces(b"head\r\n\r", b"\n") + [ok(b"head\r\n\r\n")] + end()),
    ("until-delim-split-each-byte", "until with a 4-byte delimiter split into single bytes", CONTRACT, "MUST",
     [("send", b"until 0d0a0d0a 100\nhead")] + bytewise(b"\r\n\r\n", 0.02) + [ok(b"head\r\n\r\n")] + end()),
    ("until-first-occurrence", "until returns through the first occurrence; the rest is kept", CONTRACT, "MUST",
     [("send", b"until 2c -\na,bytes 2\nb,until 2c 10\nc,"), ok(b"a,"), ok(b"b,"), ok(b"c,")] + end()),
    ("until-no-limit", "until with no max (-)", CONTRACT, "MUST",
     [("send", b"until 00 -\n" + b"x" * 5000 + b"\x00"), ok(b"x" * 5000 + b"\x00")] + end()),
    ("until-max-exact", "until: delimiter ending exactly at max is satisfiable", TORNADO, "MUST",
     [("send", b"until 0d0a 7\nhello\r\n"), ok(b"hello\r\n")] + end()),
    ("until-delim-beyond-max", "until: delimiter found but ending past max -> unsatisfiable", TORNADO, "MUST",
     [("send", b"until 0d0a 6\nhello\r\n")] + err_unsat()),
    ("until-delim-beyond-max-split", "until: delimiter completing past max in a later write -> unsatisfiable",
     TORNADO, "MUST", [("send", b"until 0d0a 6\n")] + pieces(b"hello", b"\r\n") + err_unsat()),
    ("until-max-exceeded-no-delim", "until: more than max bytes without the delimiter -> unsatisfiable at once",
     TORNADO, "MUST", [("send", b"until 0a 5\nabcdefgh")] + err_unsat()),
    ("until-max-exceeded-bytewise", "until: max exceeded one byte at a time -> unsatisfiable", TORNADO, "MUST",
     [("send", b"until 0a 5\n")] + bytewise(b"abcdef") + err_unsat()),
    ("until-high-bytes", "until with a delimiter and data of bytes >= 0x80", CONTRACT, "MUST",
     [("send", b"until fffe 1000\n" + bytes(range(0x80, 0xfe)) + b"\xff\xfe"),
      ok(bytes(range(0x80, 0xfe)) + b"\xff\xfe")] + end()),
    ("until-1mib", "until with 1 MiB before the delimiter (max 2 MiB)", CONTRACT, "MUST",
     [("send", b"until 0a %d\n" % (2 << 20) + MIB1 + b"\n"), ok(MIB1 + b"\n")] + end()),
    ("until-peer-closes-early", "peer half-closes before the delimiter: no ok, the probe closes", TORNADO,
     "MUST", [("send", b"until 0a 100\nabc"), ("shut",), ("closed_no_ok",)]),
    ("until-buffered-then-close", "a line already buffered is delivered although the peer closed", TORNADO,
     "MUST", [("send", b"until 0a 100\nline\n"), ("shut",), ok(b"line\n"), ("eof",)]),
    # ---- regex ----
    ("regex-one-write", "regex with the match in one write", CONTRACT, "MUST",
     [("send", b"regex %s 100\nabc123bytes 1\nz" % h(rb"[0-9]+").encode()), ok(b"abc123"), ok(b"z")] + end()),
    ("regex-across-fragments", "regex match spanning fragments", CONTRACT, "MUST",
     [("send", b"regex %s 100\n" % h(rb"\r?\n\r?\n").encode())] + pieces(b"head\r\n", b"\r", b"\n") +
     [ok(b"head\r\n\r\n")] + end()),
    ("regex-bytewise", "regex with the data one byte at a time", CONTRACT, "MUST",
     [("send", b"regex %s 100\n" % h(rb"id=[0-9]+;").encode())] + bytewise(b"xx id=42;") +
     [ok(b"xx id=42;")] + end()),
    ("regex-earliest-match", "regex returns at the first match in the data that has arrived", TORNADO, "MUST",
     [("send", b"regex %s 100\n" % h(rb"a+").encode()), ("sleep", 0.03), ("send", b"xaa"), ok(b"xaa"),
      ("send", b"close\n"), ("shut",), ok(b""), ("eof",)]),
    ("regex-leftmost", "regex: the leftmost match wins; the rest is kept", CONTRACT, "MUST",
     [("send", b"regex %s -\n12abc;bytes 3\nde;" % h(rb"[a-z]+;").encode()), ok(b"12abc;"), ok(b"de;")] + end()),
    ("regex-dot-not-newline", "regex: '.' does not match a newline (Python re on bytes)", CONTRACT, "MUST",
     [("send", b"regex %s 100\na\nbxa-b" % h(rb"a.b").encode()), ok(b"a\nbxa-b")] + end()),
    ("regex-high-bytes-literal", "regex with bytes >= 0x80 in the pattern and data", CONTRACT, "MUST",
     [("send", b"regex %s 1000\n" % h(b"[\x80-\xff]+\x00").encode() + b"ab\xc3\xa9\xff\x00"),
      ok(b"ab\xc3\xa9\xff\x00")] + end()),
    ("regex-high-bytes-escape", r"regex with \xNN escapes for bytes >= 0x80", CONTRACT, "MUST",
     [("send", b"regex %s 1000\n" % h(rb"\xe9\xff").encode() + b"caf\xe9\xff"), ok(b"caf\xe9\xff")] + end()),
    ("regex-ignorecase-ascii", "regex (?i) folds ASCII letters", CONTRACT, "MUST",
     [("send", b"regex %s 100\nxxHeLLo" % h(rb"(?i)hello").encode()), ok(b"xxHeLLo")] + end()),
    ("regex-ignorecase-latin1", "regex (?i) does not fold bytes >= 0x80 (Python re on bytes)", CONTRACT,
     "SHOULD",
     [("send", b"regex %s 100\n" % h(b"(?i)\xe0|;").encode() + b"\xc0;"), ok(b"\xc0;")] + end(),
     "Python's re on bytes case-folds ASCII only, so (?i)\\xe0 does not match \\xc0 and the read ends at ';'; "
     "an engine folding Latin-1 letters (RE2 in Latin-1 mode) would return just \\xc0"),
    ("regex-max-exceeded", "regex: more than max bytes without a match -> unsatisfiable", TORNADO, "MUST",
     [("send", b"regex %s 5\nabcdefgh" % h(rb"[0-9]").encode())] + err_unsat()),
    ("regex-match-beyond-max", "regex: match ending past max -> unsatisfiable", TORNADO, "MUST",
     [("send", b"regex %s 4\nabcdef;" % h(rb";").encode())] + err_unsat()),
    ("regex-peer-closes-early", "peer half-closes before a match: no ok, the probe closes", TORNADO, "MUST",
     [("send", b"regex %s 100\nabc" % h(rb"[0-9]").encode()), ("shut",), ("closed_no_ok",)]),
    # ---- close ----
    ("close-one-write", "close returns everything sent before the half-close", CONTRACT, "MUST",
     [("send", b"close\nsome data"), ("shut",), ok(b"some data"), ("eof",)]),
    ("close-empty", "close with nothing sent", CONTRACT, "MUST",
     [("send", b"close\n"), ("shut",), ok(b""), ("eof",)]),
    ("close-bytewise", "close with the data one byte at a time", CONTRACT, "MUST",
     [("send", b"close\n")] + bytewise(b"fragmented!") + [("shut",), ok(b"fragmented!"), ("eof",)]),
    ("close-after-commands", "close after other commands on the same connection", CONTRACT, "MUST",
     [("send", b"bytes 3\nabcuntil 0a 10\nxy\nclose\nrest"), ("shut",), ok(b"abc"), ok(b"xy\n"), ok(b"rest"),
      ("eof",)]),
    ("close-4mib", "close with 4 MiB", CONTRACT, "MUST",
     [("send", b"close\n" + MIB4), ("shut",), ok(MIB4), ("eof",)]),
    # ---- protocol ----
    ("unsatisfiable-then-closed", "after err unsatisfiable the connection is closed (later data ignored)",
     CONTRACT, "MUST",
     [("send", b"until 0a 3\nabcdefbytes 1\nx")] + err_unsat()),
]


# ---- buffer limits: a second probe started with --max-buffer-size BUFFER ----
# Tornado 6.2's IOStream (the yardstick) reads the socket in read_chunk_size pieces, capped
# at max_buffer_size // 2, stops reading once the pending read can be satisfied, and fails
# when the buffered bytes exceed max_buffer_size (StreamBufferFullError; the stream closes).
BUFFER = 1024
BUFFER_OPTIONS = ("--max-buffer-size", str(BUFFER))
FULL = ("closed_no_ok",)  # the "err" line's wording is buffer-full-error-named's concern
AFTER = 0.05  # the command is read before the payload arrives
TORNADO_ERR_CLOSED = (
    "Tornado 6.2 answers err closed: when the buffer overflows while a read is pending, "
    "_read_to_buffer closes the stream before raising StreamBufferFullError, so the read fails "
    "with a StreamClosedError that carries no real_error; the reference's read fails with "
    "StreamBufferFullError (err buffer-full)")

def payload(n, fill=b"a"):
    return fill * n


BUFFER_SPECS = [
    ("buffer-bytes-at-limit", "bytes N of exactly max_buffer_size", TORNADO, "MUST",
     [("send", b"bytes %d\n" % BUFFER), ("sleep", AFTER), ("send", payload(BUFFER)), ok(payload(BUFFER))] + end()),
    ("buffer-bytes-over-limit", "bytes N beyond max_buffer_size fails: buffer full, the probe closes", TORNADO,
     "MUST", [("send", b"bytes %d\n" % (4 * BUFFER)), ("sleep", AFTER), ("send", payload(4 * BUFFER)), FULL]),
    ("buffer-bytes-over-limit-pieces", "bytes N beyond max_buffer_size arriving in 100-byte writes fails",
     TORNADO, "MUST", [("send", b"bytes %d\n" % (2 * BUFFER)), ("sleep", AFTER)] +
     pieces(*[payload(100)] * (BUFFER // 100 + 1), delay=0.005) + [FULL]),
    ("buffer-until-at-limit", "until: the delimiter ending exactly at max_buffer_size is found", TORNADO, "MUST",
     [("send", b"until 0a -\n"), ("sleep", AFTER), ("send", payload(BUFFER - 1) + b"\n"),
      ok(payload(BUFFER - 1) + b"\n")] + end()),
    ("buffer-until-no-max", "until without max: no delimiter within max_buffer_size fails (buffer full)",
     TORNADO, "MUST", [("send", b"until 0a -\n"), ("sleep", AFTER), ("send", payload(2 * BUFFER)), FULL]),
    ("buffer-until-max-above-limit", "until with max above max_buffer_size: the buffer limit comes first",
     TORNADO, "MUST", [("send", b"until 0a %d\n" % (4 * BUFFER)), ("sleep", AFTER), ("send", payload(2 * BUFFER)),
                       FULL]),
    ("buffer-until-delim-past-limit", "until: a delimiter arriving past max_buffer_size is too late (buffer full)",
     TORNADO, "MUST", [("send", b"until 0a -\n"), ("sleep", AFTER), ("send", payload(2 * BUFFER - 1) + b"\n"),
                       FULL]),
    ("buffer-regex-at-limit", "regex: a match ending exactly at max_buffer_size is found", TORNADO, "MUST",
     [("send", b"regex %s -\n" % h(rb"[0-9]").encode()), ("sleep", AFTER), ("send", payload(BUFFER - 1) + b"7"),
      ok(payload(BUFFER - 1) + b"7")] + end()),
    ("buffer-regex-no-max", "regex without max: no match within max_buffer_size fails (buffer full)", TORNADO,
     "MUST", [("send", b"regex %s -\n" % h(rb"[0-9]").encode()), ("sleep", AFTER), ("send", payload(2 * BUFFER)),
              FULL]),
    ("buffer-regex-max-above-limit", "regex with max above max_buffer_size: the buffer limit comes first",
     TORNADO, "MUST", [("send", b"regex %s %d\n" % (h(rb"[0-9]").encode(), 4 * BUFFER)), ("sleep", AFTER),
                       ("send", payload(2 * BUFFER)), FULL]),
    ("buffer-close-at-limit", "close: exactly max_buffer_size bytes before the half-close", TORNADO, "MUST",
     [("send", b"close\n"), ("sleep", AFTER), ("send", payload(BUFFER)), ("shut",), ok(payload(BUFFER)), ("eof",)]),
    ("buffer-close-over-limit", "close: more than max_buffer_size before the half-close fails, never truncated",
     CONTRACT, "SHOULD",
     [("send", b"close\n"), ("sleep", AFTER), ("send", payload(2 * BUFFER)), ("shut",), FULL],
     "Tornado 6.2 answers ok with the first 1536 bytes, as if the peer had closed there: on overflow "
     "_read_to_buffer calls close(), and close() completes a pending read_until_close with whatever is "
     "buffered; the reference fails the read with StreamBufferFullError rather than return truncated data"),
    ("buffer-full-error-named", "a read beyond max_buffer_size is reported as err buffer-full", CONTRACT, "SHOULD",
     [("send", b"bytes %d\n" % (4 * BUFFER)), ("sleep", AFTER), ("send", payload(4 * BUFFER)),
      ("names", b"err buffer-full\n")], TORNADO_ERR_CLOSED),
    ("buffer-full-then-new-connection", "after one connection overflowed, a new connection is served", CONTRACT,
     "MUST", [("send", b"close\n" + payload(2 * BUFFER)), ("shut",), ("closed",), ("reconnect",),
              ("send", b"bytes 5\nhello"), ok(b"hello")] + end()),
    # The peer sends more than max_buffer_size at once, but the pending read can be satisfied.
    ("buffer-surplus-bytes", "bytes N with max_buffer_size bytes more already sent: the read completes",
     TORNADO, "MUST", [("send", b"bytes 100\n"), ("sleep", AFTER), ("send", payload(2 * BUFFER)),
                       ok(payload(100))]),
    ("buffer-surplus-until", "until: a line followed by more than max_buffer_size in one write completes",
     TORNADO, "MUST", [("send", b"until 0a -\n"), ("sleep", AFTER), ("send", b"line\n" + payload(2 * BUFFER)),
                       ok(b"line\n")]),
    ("buffer-command-and-payload", "the command and a max_buffer_size payload in one write", TORNADO, "MUST",
     [("send", b"bytes %d\n" % BUFFER + payload(BUFFER, b"b")), ok(payload(BUFFER, b"b"))] + end()),
    ("buffer-partial-over-limit", "partial N above max_buffer_size with more arriving returns some bytes",
     TORNADO, "MUST", [("send", b"partial %d\n" % (4 * BUFFER)), ("sleep", AFTER), ("send", payload(2 * BUFFER)),
                       ("ok_prefix", payload(2 * BUFFER), BUFFER)]),
    ("buffer-until-max-below-limit", "until with max below max_buffer_size and more arriving: unsatisfiable",
     TORNADO, "MUST", [("send", b"until 0a 100\n"), ("sleep", AFTER), ("send", payload(2 * BUFFER))] +
     err_unsat()),
]


class Script:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=STEP_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def fill(self, deadline, n=None):
        """Receive until n bytes are buffered (n None: until the probe closes), EOF or the deadline."""
        while (n is None or len(self.buf) < n) and not self.eof and time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                break
            except ConnectionResetError:
                d = b""
            self.eof = not d
            self.buf += d

    def take(self, n):
        got, self.buf = self.buf[:n], self.buf[n:]
        return got


def short(b, n=60):
    return repr(b[:n]) + (f"...(+{len(b) - n} bytes)" if len(b) > n else "")


def read_reply_line(s, deadline):
    """The reply line (without the newline) once it arrived, else None."""
    while b"\n" not in s.buf and not s.eof and time.monotonic() < deadline:
        s.fill(deadline, len(s.buf) + 1)
    if b"\n" not in s.buf:
        return None
    line, _, _ = s.buf.partition(b"\n")
    return line


def run_script(host, port, steps, level, log):
    """Runs the steps on a new connection, appending the exchange to log; a Verdict."""
    s = Script(host, port)
    try:
        for step in steps:
            kind = step[0]
            deadline = time.monotonic() + STEP_TIMEOUT
            if kind == "send":
                log(f"> {short(step[1])}")
                try:
                    s.sock.sendall(step[1])
                except OSError as e:
                    log(f"! send failed: {e}")
                    return mismatch(level, f"send failed: {e}")
            elif kind == "sleep":
                time.sleep(step[1])
            elif kind == "shut":
                log("> [half-close]")
                try:
                    s.sock.shutdown(socket.SHUT_WR)
                except OSError as e:  # the probe may have closed (and reset) the connection already
                    log(f"! half-close failed: {e}")
            elif kind == "reconnect":
                log("> [close; new connection]")
                s.sock.close()
                s = Script(host, port)
            elif kind == "expect":
                want = step[1]
                s.fill(deadline, len(want))
                got = s.take(len(want))
                log(f"< {short(got)}")
                if got != want:
                    if len(got) < len(want) and want.startswith(got):
                        why = "connection closed" if s.eof else f"timed out after {STEP_TIMEOUT:.0f} s"
                        return mismatch(level, f"{why} after {len(got)} of {len(want)} expected bytes")
                    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), 0)
                    return mismatch(level, f"expected {short(want[i:], 30)} at byte {i}, got {short(got[i:], 30)}")
            elif kind == "ok_prefix":
                data, most = step[1], step[2]
                line = read_reply_line(s, deadline)
                words = (line or b"").split()
                if len(words) != 2 or words[0] != b"ok" or not words[1].isdigit():
                    s.fill(deadline, len(s.buf) + 1)
                    log(f"< {short(s.buf)}")
                    return mismatch(level, f"expected ok with 1 to {most} bytes, got {short(s.buf, 30)}")
                n = int(words[1])
                s.fill(deadline, len(line) + 1 + n)
                got = s.take(len(line) + 1 + n)[len(line) + 1:]
                log(f"< ok {n}\n{short(got)}")
                if not 0 < n <= most or got != data[:n]:
                    return mismatch(level, f"ok {n}: expected 1 to {most} bytes, the first of those sent")
            elif kind in ("eof", "closed"):
                s.fill(deadline)
                if s.buf and kind == "eof":
                    log(f"< {short(s.buf)}")
                    return mismatch(level, f"unexpected bytes before close: {short(s.buf, 40)}")
                if not s.eof:
                    return mismatch(level, f"connection not closed within {STEP_TIMEOUT:.0f} s")
                log(f"< {short(s.take(len(s.buf)))} [closed]")
            elif kind in ("closed_no_ok", "names"):
                s.fill(deadline)
                log(f"< {short(s.buf)}" + (" [closed]" if s.eof else ""))
                if s.buf.startswith(b"ok"):
                    return mismatch(level, f"answered {short(s.buf, 30)} although the read could not complete")
                if not s.eof:
                    return mismatch(level, f"connection not closed within {STEP_TIMEOUT:.0f} s")
                if s.buf and not ERR_LINE.fullmatch(s.buf):
                    return mismatch(level, f"answered {short(s.buf, 40)} and closed: not one 'err <reason>' line "
                                           f"(CONTRACTS.md §2)")
                reply = s.buf.decode("latin-1").strip()
                if kind == "names" and s.buf != step[1]:
                    return warn(f"closed without ok, {reply or 'no reply'!r} (allowed; {step[1].strip().decode()!r} "
                                f"is the precise reply)")
                return passed(f"closed without ok ({reply or 'no reply'})")
            else:
                raise ValueError(kind)
        return passed("replies as expected")
    finally:
        s.sock.close()


def stream_case(cid, title, source, level, steps, note="", options=()):
    @case(f"stream-{cid}", "stream", title, source, level, note=note,
          slow=any(st[0] == "send" and len(st[1]) > (1 << 20) for st in steps))
    def run(ctx):
        if options and not ctx.target.supports("stream", options[0]):
            return na(f"{ctx.target.name}'s stream probe has no {options[0]} option")
        host, port = ctx.target.stream_address(*options)
        try:
            return run_script(host, port, steps, level, ctx.log)
        except ConnectionRefusedError as e:
            return error(f"cannot connect to the probe: {e}")
        except OSError as e:
            return mismatch(level, f"socket error: {e}")
    return run


for _spec in SPECS:
    stream_case(*_spec)
for _spec in BUFFER_SPECS:
    stream_case(*_spec[:5], note=_spec[5] if len(_spec) > 5 else "", options=BUFFER_OPTIONS)
