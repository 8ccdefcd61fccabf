#!/usr/bin/env node
// Squall contract §2 (stream probe), written in plain Node.js from the contract text alone.
// Standard library only; runs on Node 18 and 20.
//
//   node stream_probe.js --port N [--max-buffer-size B]
//
// Per connection: read a command line ending in "\n", perform exactly one read on the
// bytes that follow, reply "ok <len>\n" + the bytes (or "err <why>\n" and close), then read
// the next command. Bytes that arrived beyond what one read consumed stay buffered for the
// next command.
'use strict';

const net = require('net');

const USAGE = `usage: node stream_probe.js --port N [--max-buffer-size B]

  --port N              port to listen on (127.0.0.1); 0: the kernel picks one
                        (the chosen port is printed as "port=N" once listening)
  --max-buffer-size B   at most B bytes may wait in the read buffer; a read that needs
                        more fails with "err buffer-full" and the connection is closed
  --help                this text

commands (one per line, each followed by its payload):
  bytes N               read exactly N bytes
  partial N             read up to N bytes, returning as soon as any arrive
  until <hex> <max>     read through the delimiter (hex-encoded), at most max bytes ("-": no max)
  regex <hex> <max>     read through the first match of the pattern (hex-encoded, Python re
                        syntax on bytes), at most max bytes ("-": no max)
  close                 read until the peer half-closes
replies: "ok <len>\\n" + the bytes; "err unsatisfiable\\n", "err buffer-full\\n",
"err closed\\n" or "err command\\n", each followed by close.
`;

function usage(msg) {
  if (msg) process.stderr.write(`stream_probe.js: ${msg}\n`);
  process.stderr.write(USAGE);
  process.exit(2);
}

let port = null;
let maxBuffer = 0;      // 0: no limit
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { process.stdout.write(USAGE); process.exit(0); }
    else if (a === '--port') {
      const v = argv[++i];
      if (v === undefined || !/^[0-9]+$/.test(v) || Number(v) > 65535) usage('--port needs 0..65535');
      port = Number(v);
    } else if (a === '--max-buffer-size') {
      const v = argv[++i];
      if (v === undefined || !/^[0-9]+$/.test(v) || Number(v) < 2) usage('--max-buffer-size needs a number >= 2');
      maxBuffer = Number(v);
    } else usage(`unknown argument ${a}`);
  }
  if (port === null) usage('--port is required');
}

const MAX_COMMAND = 64 * 1024;         // a command line longer than this is refused
const HIGH_WATER = 4 * 1024 * 1024;    // received but not yet taken: pause the socket above this
// With a limit, bytes are taken from the socket in pieces of half the limit, and only while
// the pending read cannot complete yet (what a buffered stream with that limit does).
const PIECE = maxBuffer ? Math.max(1, Math.floor(maxBuffer / 2)) : Infinity;

// A growable byte buffer: append at the end, consume from the front.
class ByteBuf {
  constructor() { this.data = Buffer.alloc(4096); this.start = 0; this.end = 0; }
  get length() { return this.end - this.start; }
  view() { return this.data.subarray(this.start, this.end); }
  append(chunk) {
    if (this.end + chunk.length > this.data.length) {
      const need = this.length + chunk.length;
      if (need <= this.data.length / 2 || (this.start > 0 && need <= this.data.length)) {
        this.data.copy(this.data, 0, this.start, this.end);
      } else {
        let cap = this.data.length;
        while (cap < need) cap *= 2;
        const d = Buffer.alloc(cap);
        this.data.copy(d, 0, this.start, this.end);
        this.data = d;
      }
      this.end = this.length;
      this.start = 0;
    }
    chunk.copy(this.data, this.end);
    this.end += chunk.length;
  }
  take(n) {
    const out = Buffer.from(this.data.subarray(this.start, this.start + n));
    this.start += n;
    if (this.start === this.end) { this.start = 0; this.end = 0; }
    return out;
  }
}

// Python's re on bytes, approximated by a JS RegExp (no "u" flag) on a string of one char
// per byte. Bytes 0x00-0x7f are themselves; bytes 0x80-0xff become U+E080-U+E0FF (private
// use: no case, not whitespace, not word characters), as Python's re treats them on bytes:
// (?i) folds ASCII letters only, \s and \w are ASCII only. The pattern is mapped the same
// way, including its \xHH escapes, and the few Python spellings JS lacks are translated:
// leading global flags (?imsx...), (?P<name>, (?P=name), \A, \Z, and "$" (end, or before
// a final newline, unless MULTILINE).
const HIGH = 0xe000;
function bytesToPattern(bytes) {
  return bytes.toString('latin1').replace(/[\x80-\xff]/g, (c) => String.fromCharCode(HIGH + c.charCodeAt(0)));
}
function compilePattern(bytes) {
  let src = bytesToPattern(bytes);
  let flags = '';
  const lead = /^\(\?([aiLmsux]+)\)/.exec(src);
  if (lead) {
    src = src.slice(lead[0].length);
    for (const f of lead[1]) if ('ims'.includes(f) && !flags.includes(f)) flags += f;
  }
  const multiline = flags.includes('m');
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) throw new Error('trailing backslash');
      if (n === 'x' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 2, i + 4))) {
        const v = parseInt(src.slice(i + 2, i + 4), 16);
        out += v < 0x80 ? src.slice(i, i + 4) : '\\u' + (HIGH + v).toString(16);
        i += 3;
        continue;
      }
      if (!inClass && n === 'A') { out += '(?<![\\s\\S])'; i += 1; continue; }
      if (!inClass && n === 'Z') { out += '(?![\\s\\S])'; i += 1; continue; }
      out += c + n;
      i += 1;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (src[i + 1] === '^') { out += '^'; i += 1; }
      if (src[i + 1] === ']') { out += '\\]'; i += 1; }    // "]" first in a class is literal in Python
      continue;
    }
    if (c === '(' && src.startsWith('(?P<', i)) { out += '(?<'; i += 3; continue; }
    if (c === '(' && src.startsWith('(?P=', i)) {
      const close = src.indexOf(')', i);
      if (close < 0) throw new Error('bad group reference');
      out += '\\k<' + src.slice(i + 4, close) + '>';
      i = close;
      continue;
    }
    if (c === '$' && !multiline) { out += '(?=\\n?(?![\\s\\S]))'; continue; }
    out += c;
  }
  return new RegExp(out, flags);
}

function parseCommand(line) {
  const parts = line.split(' ').filter((p) => p !== '');
  const num = (s) => (s !== undefined && /^[0-9]+$/.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : null);
  const max = (s) => (s === '-' ? Infinity : num(s));    // "-": no limit
  const hex = (s) => (s !== undefined && /^([0-9A-Fa-f]{2})*$/.test(s) ? Buffer.from(s, 'hex') : null);
  switch (parts[0]) {
    case 'bytes': case 'partial': {
      const n = num(parts[1]);
      if (n === null || parts.length !== 2) return null;
      return { kind: parts[0], n };
    }
    case 'until': {
      const d = hex(parts[1]), m = max(parts[2]);
      if (!d || d.length === 0 || m === null || parts.length !== 3) return null;
      return { kind: 'until', delim: d, max: m, scanned: 0 };
    }
    case 'regex': {
      const p = hex(parts[1]), m = max(parts[2]);
      if (!p || m === null || parts.length !== 3) return null;
      let re;
      try { re = compilePattern(p); } catch (e) { return null; }
      return { kind: 'regex', re, max: m };
    }
    case 'close':
      return parts.length === 1 ? { kind: 'close' } : null;
    default:
      return null;
  }
}

function serve(sock) {
  const buf = new ByteBuf();      // bytes taken from the socket, not yet consumed
  const pending = [];             // bytes received but not yet taken (the "socket")
  let pendingBytes = 0;
  let eof = false;                // the peer half-closed
  let done = false;               // we replied with an error / closed
  let op = null;                  // the read in progress (null: reading a command line)
  let cmdScanned = 0;

  sock.setNoDelay(true);
  sock.on('error', () => { done = true; sock.destroy(); });
  sock.on('data', (chunk) => {
    if (done) return;
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes > HIGH_WATER) sock.pause();
    step();
  });
  sock.on('end', () => { eof = true; step(); });
  sock.on('close', () => { done = true; });

  function finish(reply) {
    done = true;
    if (reply !== undefined) sock.end(reply); else sock.end();
    // a peer that keeps writing must not keep us open
    setTimeout(() => sock.destroy(), 2000).unref();
  }

  // Takes the next piece from what was received into the buffer; false if none.
  function takePiece() {
    if (!pending.length) return false;
    let chunk = pending[0];
    if (chunk.length > PIECE) {
      pending[0] = chunk.subarray(PIECE);
      chunk = chunk.subarray(0, PIECE);
    } else {
      pending.shift();
    }
    pendingBytes -= chunk.length;
    if (sock.isPaused() && pendingBytes <= HIGH_WATER / 2) sock.resume();
    buf.append(chunk);
    return true;
  }

  // Tries to complete the current read: returns a reply, an "err" string, or null (needs more).
  function attempt() {
    const view = buf.view();
    switch (op.kind) {
      case 'bytes':
        if (buf.length >= op.n) return reply(buf.take(op.n));
        return null;
      case 'partial':
        if (op.n === 0) return reply(Buffer.alloc(0));
        if (buf.length > 0) return reply(buf.take(Math.min(op.n, buf.length)));
        return null;
      case 'until': {
        const from = Math.max(0, op.scanned - op.delim.length + 1);
        const at = view.indexOf(op.delim, from);
        if (at >= 0) {
          const end = at + op.delim.length;
          if (end > op.max) return 'err unsatisfiable\n';
          return reply(buf.take(end));
        }
        op.scanned = view.length;
        if (view.length >= op.max) return 'err unsatisfiable\n';
        return null;
      }
      case 'regex': {
        const m = op.re.exec(bytesToPattern(view));
        if (m) {
          const end = m.index + m[0].length;
          if (end > op.max) return 'err unsatisfiable\n';
          return reply(buf.take(end));
        }
        if (view.length > op.max) return 'err unsatisfiable\n';
        return null;
      }
      case 'close':
        return null;      // completes at end of stream only
      default:
        return 'err command\n';
    }
  }

  function reply(bytes) {
    return Buffer.concat([Buffer.from(`ok ${bytes.length}\n`, 'latin1'), bytes]);
  }

  function step() {
    while (!done) {
      if (op === null) {
        const view = buf.view();
        const nl = view.indexOf(0x0a, cmdScanned);
        if (nl >= 0) {
          const line = buf.take(nl + 1).toString('latin1').replace(/\r?\n$/, '');
          cmdScanned = 0;
          op = parseCommand(line);
          if (op === null) { finish('err command\n'); return; }
          continue;
        }
        cmdScanned = view.length;
        if (view.length > MAX_COMMAND) { finish('err command\n'); return; }
      } else {
        const out = attempt();
        if (typeof out === 'string') { finish(out); return; }
        if (out) { sock.write(out); op = null; continue; }
      }
      // more bytes are needed
      if (takePiece()) {
        if (maxBuffer && buf.length > maxBuffer) { finish('err buffer-full\n'); return; }
        continue;
      }
      if (eof) {
        if (op && op.kind === 'close') {
          const all = buf.take(buf.length);
          sock.write(reply(all));
          op = null;
          finish();
          return;
        }
        if (op === null && buf.length === 0) { finish(); return; }
        finish('err closed\n');
        return;
      }
      return;   // wait for data
    }
  }
}

const server = net.createServer({ allowHalfOpen: true }, serve);
server.on('error', (e) => { process.stderr.write(`stream_probe.js: ${e.message}\n`); process.exit(1); });
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`port=${server.address().port}\n`);
});

function shutdown() { server.close(); process.exit(0); }
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('uncaughtException', (e) => { process.stderr.write(`stream_probe.js: uncaught: ${e && e.stack || e}\n`); });
