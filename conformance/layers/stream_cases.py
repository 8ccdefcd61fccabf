"""Stream layer (contracts.md §2): scripted exchanges with a stream probe over 127.0.0.1.

A case is a script of steps run on one connection:
  ("send", bytes)  ("sleep", seconds)  ("shut",)  half-close the sending side
  ("expect", bytes)   the next reply bytes, exactly
  ("eof",)            the probe closes the connection (nothing more arrives)
  ("closed_no_ok",)   the probe closes, without an "ok" reply (any "err ..." line is fine)
Expectations follow Tornado's IOStream (Tornado semantics) and the contract's replies.
"""
import os
import random
import socket
import time

from . import ERROR, FAIL, PASS, TORNADO, Case, mismatch

CONTRACT = "contracts.md §2"
STEP_TIMEOUT = 5.0
DELAY = 0.003  # between hostile fragments


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


class Script:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=STEP_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def recv_some(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        d = self.sock.recv(1 << 20)
        if not d:
            self.eof = True
        self.buf += d
        return d

    def fill(self, n, deadline):
        while len(self.buf) < n and not self.eof and time.monotonic() < deadline:
            try:
                self.recv_some(deadline)
            except socket.timeout:
                break
            except ConnectionResetError:
                self.eof = True

    def to_eof(self, deadline):
        while not self.eof and time.monotonic() < deadline:
            try:
                self.recv_some(deadline)
            except socket.timeout:
                break
            except ConnectionResetError:
                self.eof = True


def short(b, n=60):
    return repr(b[:n]) + (f"...(+{len(b) - n} bytes)" if len(b) > n else "")


def run_script(host, port, steps, level, log):
    """Runs the steps on a new connection, appending the exchange to log; (verdict, reason)."""
    s = Script(host, port)
    try:
        for step in steps:
            kind = step[0]
            deadline = time.monotonic() + STEP_TIMEOUT
            if kind == "send":
                log.append(f"> {short(step[1])}")
                try:
                    s.sock.sendall(step[1])
                except OSError as e:
                    log.append(f"! send failed: {e}")
                    return mismatch(level), f"send failed: {e}"
            elif kind == "sleep":
                time.sleep(step[1])
            elif kind == "shut":
                log.append("> [half-close]")
                s.sock.shutdown(socket.SHUT_WR)
            elif kind == "expect":
                want = step[1]
                s.fill(len(want), deadline)
                got, s.buf = s.buf[:len(want)], s.buf[len(want):]
                log.append(f"< {short(got)}")
                if got != want:
                    if len(got) < len(want) and want.startswith(got):
                        why = "connection closed" if s.eof else f"timed out after {STEP_TIMEOUT:.0f} s"
                        return mismatch(level), f"{why} after {len(got)} of {len(want)} expected bytes"
                    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), 0)
                    return mismatch(level), f"expected {short(want[i:], 30)} at byte {i}, got {short(got[i:], 30)}"
            elif kind == "eof":
                s.to_eof(deadline)
                if s.buf:
                    log.append(f"< {short(s.buf)}")
                    return mismatch(level), f"unexpected bytes before close: {short(s.buf, 40)}"
                if not s.eof:
                    return mismatch(level), f"connection not closed within {STEP_TIMEOUT:.0f} s"
                log.append("< [closed]")
            elif kind == "closed_no_ok":
                s.to_eof(deadline)
                log.append(f"< {short(s.buf)}" + (" [closed]" if s.eof else ""))
                if s.buf.startswith(b"ok"):
                    return mismatch(level), f"answered {short(s.buf, 30)} although the read could not complete"
                if not s.eof:
                    return mismatch(level), f"connection not closed within {STEP_TIMEOUT:.0f} s"
                reply = s.buf.split(b"\n")[0].decode("latin-1")
                return PASS, f"closed without ok ({reply or 'no reply'})"
            else:
                raise ValueError(kind)
        return PASS, "replies as expected"
    finally:
        s.sock.close()


def _make(steps, level):
    def fn(target):
        addr = target.stream_address()
        if addr is None:
            return "n/a", f"{target.name} has no stream probe", ""
        log = []
        try:
            verdict, reason = run_script(addr[0], addr[1], steps, level, log)
        except ConnectionRefusedError as e:
            return ERROR, f"cannot connect to the probe: {e}", ""
        except OSError as e:
            return mismatch(level), f"socket error: {e}", "\n".join(log)
        return verdict, reason, "\n".join(log)
    return fn


def cases():
    out = []
    for spec in SPECS:
        cid, title, source, level, steps = spec[:5]
        note = spec[5] if len(spec) > 5 else ""
        slow = any(st[0] == "send" and len(st[1]) > (1 << 20) for st in steps)
        out.append(Case(f"stream-{cid}", "stream", title, source, level, _make(steps, level), note, slow))
    return out
