#!/usr/bin/env node
// Squall contract §1 (server app), written in plain Node.js from the contract text alone.
// Standard library only; runs on Node 18 and 20.
//
//   node server.js --port N [--catch-all] [--idle-timeout S] [--header-timeout S]
//                  [--body-timeout S] [--certfile F --keyfile F]
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');
const zlib = require('zlib');
const crypto = require('crypto');

const USAGE = `usage: node server.js --port N [options]

  --port N             port to listen on (127.0.0.1); 0: the kernel picks one
                       (the chosen port is printed as "port=N" once listening)
  --catch-all          paths that match no rule are served by the "/" handler
  --idle-timeout S     close connections idle (no request in flight) for S seconds
  --header-timeout S   a request's header block must arrive within S seconds
  --body-timeout S     an announced request body must arrive within S seconds of the head
  --certfile F         serve HTTPS with this certificate (PEM) ...
  --keyfile F          ... and this private key (PEM)
  --help               this text
`;

function usage(msg) {
  if (msg) process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write(USAGE);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { port: null, catchAll: false, idle: null, header: null, body: null,
              certfile: null, keyfile: null };
  const seconds = (name, v) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) usage(`${name} needs a positive number of seconds`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { i += 1; return argv[i]; };
    switch (a) {
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0); break;
      case '--port': {
        const v = next();
        if (v === undefined || !/^[0-9]+$/.test(v) || Number(v) > 65535) usage('--port needs 0..65535');
        o.port = Number(v); break;
      }
      case '--catch-all': o.catchAll = true; break;
      case '--idle-timeout': o.idle = seconds(a, next()); break;
      case '--header-timeout': o.header = seconds(a, next()); break;
      case '--body-timeout': o.body = seconds(a, next()); break;
      case '--certfile': o.certfile = next(); if (!o.certfile) usage('--certfile needs a file'); break;
      case '--keyfile': o.keyfile = next(); if (!o.keyfile) usage('--keyfile needs a file'); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (o.port === null) usage('--port is required');
  if ((o.certfile === null) !== (o.keyfile === null)) usage('--certfile and --keyfile go together');
  return o;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------------------
// Small helpers

const MAX_BODY = 64 * 1024 * 1024;     // bodies held in memory (echo, args, form) are bounded
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

class HttpError extends Error {
  constructor(status, message) { super(message || http.STATUS_CODES[status] || 'Error'); this.status = status; }
}

function bodyless(status) { return (status >= 100 && status < 200) || status === 204 || status === 304; }

// Sends a complete response with an exact Content-Length (no body for HEAD/1xx/204/304).
function send(req, res, status, body, type, extra) {
  if (res._squallAbandoned) return;
  if (res.headersSent) { res.destroy(); return; }
  const headers = Object.assign({}, extra || {});
  if (bodyless(status)) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : String(body), 'utf8');
  if (type) headers['Content-Type'] = type;
  headers['Content-Length'] = String(buf.length);
  res.writeHead(status, headers);
  if (req.method === 'HEAD') res.end(); else res.end(buf);
}

function sendJson(req, res, value, status) {
  send(req, res, status || 200, JSON.stringify(value), JSON_TYPE);
}

function sendError(req, res, status, extra) {
  const reason = http.STATUS_CODES[status] || 'Error';
  send(req, res, status, `${status} ${reason}\n`, TEXT, extra);
}

// Reads the whole body (bounded) into one Buffer.
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) { failed = true; reject(new HttpError(413)); return; }
      parts.push(chunk);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(parts, size)); });
    req.on('aborted', () => { if (!failed) { failed = true; reject(new HttpError(400, 'aborted')); } });
    req.on('error', (e) => { if (!failed) { failed = true; reject(e); } });
  });
}

// Percent-decoding to bytes, then UTF-8 (strict: undecodable bytes are a 400).
const utf8 = new TextDecoder('utf-8', { fatal: true });
function percentDecode(s, plusIsSpace) {
  if (plusIsSpace) s = s.replace(/\+/g, ' ');
  if (!s.includes('%')) return s;
  const bytes = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  try { return utf8.decode(Buffer.from(bytes)); } catch (e) { throw new HttpError(400, 'undecodable argument'); }
}
function isHex(c) { return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)); }

// application/x-www-form-urlencoded (and query strings): blank values kept.
function parseUrlencoded(text, into) {
  if (!text) return into;
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = percentDecode(eq < 0 ? piece : piece.slice(0, eq), true);
    const value = percentDecode(eq < 0 ? '' : piece.slice(eq + 1), true);
    addArg(into, name, value);
  }
  return into;
}
function addArg(map, name, value) {
  if (!Object.prototype.hasOwnProperty.call(map, name)) map[name] = [];
  map[name].push(value);
}

// Media type and its parameters: "type/sub; a=b; c=\"d\"".
function parseMediaType(value) {
  if (!value) return { type: '', params: {} };
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params = semi < 0 ? {} : parseParams(value.slice(semi + 1));
  return { type, params };
}
function parseParams(s) {
  const params = {};
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ';' || s[i] === ' ' || s[i] === '\t')) i++;
    let name = '';
    while (i < s.length && s[i] !== '=' && s[i] !== ';') name += s[i++];
    name = name.trim().toLowerCase();
    let value = '';
    if (s[i] === '=') {
      i++;
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;  // closing quote
        while (i < s.length && s[i] !== ';') i++;
      } else {
        while (i < s.length && s[i] !== ';') value += s[i++];
        value = value.trim();
      }
    }
    if (name) params[name] = value;
  }
  return params;
}

// multipart/form-data: returns {fields: {name: [values]}, files: [{name, filename, content_type, size}]}.
function parseMultipart(body, boundary) {
  if (!boundary || boundary.length > 200) throw new HttpError(400, 'bad multipart boundary');
  const dash = Buffer.from('--' + boundary, 'latin1');
  const delim = Buffer.from('\r\n--' + boundary, 'latin1');
  const fields = {};
  const files = [];
  let pos;
  if (body.slice(0, dash.length).equals(dash)) pos = dash.length;
  else {
    const first = body.indexOf(delim);
    if (first < 0) throw new HttpError(400, 'no multipart boundary');
    pos = first + delim.length;
  }
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break;    // "--": the close delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;      // transport padding
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw new HttpError(400, 'bad multipart delimiter');
    pos += 2;
    const next = body.indexOf(delim, pos);
    if (next < 0) throw new HttpError(400, 'unterminated multipart body');
    const part = body.slice(pos, next);
    pos = next + delim.length;
    const sep = part.indexOf('\r\n\r\n');
    let head, content;
    if (sep < 0) {
      if (part.length >= 2 && part[0] === 0x0d && part[1] === 0x0a) { head = ''; content = part.slice(2); }
      else throw new HttpError(400, 'multipart part without header end');
    } else if (part.slice(0, 2).toString('latin1') === '\r\n') {
      head = ''; content = part.slice(2);
    } else {
      head = part.slice(0, sep).toString('utf8');
      content = part.slice(sep + 4);
    }
    const headers = {};
    for (const line of head.split('\r\n')) {
      if (!line) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new HttpError(400, 'bad multipart header');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const disp = headers['content-disposition'];
    if (!disp) continue;
    const d = parseMediaType(disp);
    if (d.type !== 'form-data' || d.params.name === undefined) continue;
    if (d.params.filename !== undefined) {
      files.push({
        name: d.params.name,
        filename: d.params.filename,
        content_type: headers['content-type'] || 'application/octet-stream',
        size: content.length,
      });
    } else {
      let text;
      try { text = utf8.decode(content); } catch (e) { throw new HttpError(400, 'undecodable form field'); }
      addArg(fields, d.params.name, text);
    }
  }
  return { fields, files };
}

// Arguments of a form body by its Content-Type: urlencoded or multipart.
function parseFormBody(req, body) {
  const mt = parseMediaType(req.headers['content-type']);
  if (mt.type === 'application/x-www-form-urlencoded') {
    let text;
    try { text = utf8.decode(body); } catch (e) { throw new HttpError(400, 'undecodable form body'); }
    return { fields: parseUrlencoded(text, {}), files: [] };
  }
  if (mt.type === 'multipart/form-data') return parseMultipart(body, mt.params.boundary);
  return { fields: {}, files: [] };
}

// Accept-Encoding allows gzip? (q=0 refuses; "*" counts when gzip is not named.)
function acceptsGzip(value) {
  if (!value) return false;
  let gzipQ = null, starQ = null;
  for (const item of value.split(',')) {
    const parts = item.split(';');
    const coding = parts[0].trim().toLowerCase();
    let q = 1;
    for (const p of parts.slice(1)) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) q = 0;
    if (coding === 'gzip' || coding === 'x-gzip') gzipQ = Math.max(gzipQ === null ? 0 : gzipQ, q);
    else if (coding === '*') starQ = q;
  }
  if (gzipQ !== null) return gzipQ > 0;
  return starQ !== null && starQ > 0;
}

// The suite compares the decoded body with exactly this text (not stated in the contract text).
const GZIP_TEXT = Buffer.from('Squall compresses this line when the client accepts gzip.\n'.repeat(200), 'utf8');
const GZIP_BODY = zlib.gzipSync(GZIP_TEXT);

const PATTERN = Buffer.from('0123456789abcdef'.repeat(4096), 'latin1');   // 64 KiB, whole periods

// Writes n bytes of the pattern as the client reads them (never the whole body at once).
function streamPattern(req, res, n) {
  let sent = 0;
  let done = false;
  const finish = () => { done = true; };
  res.on('close', finish);
  const pump = () => {
    while (!done && sent < n) {
      const len = Math.min(PATTERN.length, n - sent);
      // offsets stay aligned on the 16-byte period because PATTERN is a whole number of periods
      const chunk = PATTERN.subarray(0, len);
      sent += len;
      if (!res.write(chunk)) { res.once('drain', pump); return; }
    }
    if (!done && sent >= n) { done = true; res.end(); }
  };
  pump();
}

// ---------------------------------------------------------------------------------------
// Routes: [regex on the raw path, allowed methods (null: any), handler(req, res, groups)]

// The contract lists GET only for these endpoints; HEAD is answered 405 there, as for any
// other method a rule does not list (only "/" takes HEAD).
const GET = ['GET'];

function decodeGroups(m) {
  return m.slice(1).map((g) => percentDecode(g, false));
}

const routes = [
  { re: /^\/$/, methods: ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'], handler: rootHandler },
  { re: /^\/echo$/, methods: null, handler: async (req, res) => {
      await drain(req);
      const lines = [];
      const raw = req.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}\n`);
      send(req, res, 200, Buffer.from(lines.join(''), 'latin1'), TEXT);
    } },
  { re: /^\/cookie$/, methods: null, handler: async (req, res) => {
      await drain(req);
      const cookies = new Map();
      const raw = req.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (raw[i].toLowerCase() !== 'cookie') continue;
        for (const piece of raw[i + 1].split(';')) {
          const eq = piece.indexOf('=');
          if (eq < 0) continue;
          const name = piece.slice(0, eq).trim();
          let value = piece.slice(eq + 1).trim();
          if (!name) continue;
          if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1);
          cookies.set(name, value);
        }
      }
      let out = '';
      for (const [k, v] of cookies) out += `${k}=${v}\n`;
      send(req, res, 200, Buffer.from(out, 'latin1'), TEXT);
    } },
  { re: /^\/plaintext$/, methods: GET, handler: (req, res) => send(req, res, 200, 'Hello, World!', TEXT) },
  { re: /^\/json$/, methods: GET, handler: (req, res) => sendJson(req, res, { message: 'Hello, World!' }) },
  { re: /^\/args$/, methods: ['GET', 'POST'], handler: async (req, res) => {
      const args = {};
      parseUrlencoded(queryOf(req), args);
      const body = await readBody(req, MAX_BODY);
      if (body.length) {
        const form = parseFormBody(req, body);
        for (const [k, vs] of Object.entries(form.fields)) for (const v of vs) addArg(args, k, v);
      }
      sendJson(req, res, args);
    } },
  { re: /^\/form$/, methods: ['POST'], handler: async (req, res) => {
      const body = await readBody(req, MAX_BODY);
      sendJson(req, res, parseFormBody(req, body));
    } },
  { re: /^\/path\/([^/]+)\/([0-9]+)$/, methods: GET, handler: (req, res, m) => sendJson(req, res, decodeGroups(m)) },
  { re: /^\/named\/([^/]+)\/([^/]+)$/, methods: GET, handler: (req, res, m) => {
      const [first, second] = decodeGroups(m);
      sendJson(req, res, { first, second });
    } },
  { re: /^\/status\/([0-9]{3})$/, methods: GET, handler: (req, res, m) => {
      const status = Number(m[1]);
      if (status < 100 || status > 599) throw new HttpError(400, 'status out of range');
      const reason = http.STATUS_CODES[status] || 'Unknown';
      send(req, res, status, `${status} ${reason}\n`, TEXT);
    } },
  { re: /^\/bytes\/([0-9]+)$/, methods: GET, handler: (req, res, m) => {
      const n = Number(m[1]);
      if (!Number.isSafeInteger(n)) throw new HttpError(400, 'size out of range');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(n) });
      if (req.method === 'HEAD' || n === 0) { res.end(); return; }
      streamPattern(req, res, n);
    } },
  { re: /^\/stream\/([0-9]+)$/, methods: GET, handler: (req, res, m) => {
      const n = Number(m[1]);
      if (!Number.isSafeInteger(n) || n > 1000000) throw new HttpError(400, 'count out of range');
      res.writeHead(200, { 'Content-Type': TEXT });
      if (req.method === 'HEAD') { res.end(); return; }
      let i = 0;
      let gone = false;
      res.on('close', () => { gone = true; });
      const step = () => {
        if (gone) return;
        if (i >= n) { res.end(); return; }
        const ok = res.write(`chunk ${i}\n`);
        i += 1;
        if (ok) setImmediate(step); else res.once('drain', step);
      };
      step();
    } },
  { re: /^\/gzip$/, methods: GET, handler: (req, res) => {
      if (acceptsGzip(req.headers['accept-encoding'])) {
        send(req, res, 200, GZIP_BODY, TEXT, { 'Content-Encoding': 'gzip', 'Vary': 'Accept-Encoding' });
      } else {
        send(req, res, 200, GZIP_TEXT, TEXT, { 'Vary': 'Accept-Encoding' });
      }
    } },
  { re: /^\/redirect\/([0-9]+)$/, methods: GET, handler: (req, res, m) => {
      const n = BigInt(m[1]);
      if (n === 0n) { send(req, res, 200, 'redirects done\n', TEXT); return; }
      send(req, res, 302, '', TEXT, { 'Location': `/redirect/${n - 1n}` });
    } },
  { re: /^\/slow\/([0-9]+)$/, methods: GET, handler: (req, res, m) => {
      const ms = Math.min(Number(m[1]), 2147483647);
      const timer = setTimeout(() => send(req, res, 200, 'OK', TEXT), ms);
      res.on('close', () => clearTimeout(timer));
    } },
  { re: /^\/error$/, methods: GET, handler: () => {
      throw new Error('deliberate failure in the /error handler');
    } },
  { re: /^\/httperror\/([0-9]{3})$/, methods: GET, handler: (req, res, m) => {
      const status = Number(m[1]);
      if (status < 100 || status > 599) throw new Error('unusable status');
      throw new HttpError(status);
    } },
  { re: /^\/upload$/, methods: ['PUT'], handler: (req, res) => new Promise((resolve, reject) => {
      const hash = crypto.createHash('sha256');
      let size = 0;
      req.on('data', (chunk) => { size += chunk.length; hash.update(chunk); });
      req.on('end', () => { sendJson(req, res, { bytes: size, sha256: hash.digest('hex') }); resolve(); });
      req.on('aborted', () => reject(new HttpError(400, 'aborted')));
      req.on('error', reject);
    }) },
];

async function rootHandler(req, res) {
  const m = req.method;
  if (m === 'POST' || m === 'PUT' || m === 'PATCH') {
    const body = await readBody(req, MAX_BODY);
    send(req, res, 200, body, 'application/octet-stream');
    return;
  }
  await drain(req);
  send(req, res, 200, 'OK', TEXT);
}

// Reads and discards a body the handler does not use.
function drain(req) {
  return new Promise((resolve) => {
    if (req.complete) { resolve(); return; }
    req.on('data', () => {});
    req.on('end', resolve);
    req.on('close', resolve);
    req.on('error', resolve);
  });
}

// The path (raw, still percent-encoded) and query of the request-target.
function targetOf(req) {
  let t = req.url || '';
  const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(t);
  if (abs) { t = abs[1]; if (!t.startsWith('/')) t = '/' + t; }
  const q = t.indexOf('?');
  return { path: q < 0 ? t : t.slice(0, q), query: q < 0 ? '' : t.slice(q + 1) };
}
function queryOf(req) { return targetOf(req).query; }

const ALL_ROOT = routes[0];

async function dispatch(req, res) {
  if (req.url === '*') {
    if (req.method === 'OPTIONS') {
      send(req, res, 200, '', null, { 'Allow': 'GET, HEAD, OPTIONS, POST, PUT, PATCH' });
    } else {
      sendError(req, res, 400);    // the asterisk-form is for OPTIONS only (RFC 9112 §3.2.4)
    }
    return;
  }
  const { path } = targetOf(req);
  let route = null, m = null;
  for (const r of routes) {
    m = r.re.exec(path);
    if (m) { route = r; break; }
  }
  if (!route) {
    if (!opts.catchAll) { sendError(req, res, 404); return; }
    route = ALL_ROOT; m = [path];
  }
  if (route.methods && !route.methods.includes(req.method)) {
    sendError(req, res, 405, { 'Allow': route.methods.join(', ') });
    return;
  }
  await route.handler(req, res, m);
}

// Node counts only names and values against maxHeaderSize and silently drops fields beyond
// maxHeadersCount: a head with more fields than this is refused here (431).
const MAX_FIELDS = 1000;

// What Node's parser lets through but RFC 9110/9112 refuse: checked before any handler.
// Returns [status, reason] or null.
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+;=%-]*)(?::[0-9]*)?$/;
function refuse(req) {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor > 1 ? 505 : 400;
  const url = req.url || '';
  if (url.includes('#')) return 400;                  // a fragment is not part of a request-target
  if (/[^\x21-\x7e]/.test(url)) return 400;          // raw non-ASCII, controls, spaces
  const raw = req.rawHeaders;
  let hosts = 0, host = null;
  const codings = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    // Node 18's parser lets through names with spaces ("Host :", " Host", "A B") or empty
    if (!FIELD_NAME.test(raw[i])) return 400;
    const name = raw[i].toLowerCase();
    if (name === 'host') { hosts += 1; host = raw[i + 1]; }
    else if (name === 'transfer-encoding') codings.push(...raw[i + 1].split(','));
  }
  if (raw.length / 2 > MAX_FIELDS) return 431;
  if (hosts > 1) return 400;
  if (hosts === 0 && req.httpVersionMinor >= 1) return 400;   // HTTP/1.1 requires Host (Node 18 does not check)
  if (host !== null && !HOST_RE.test(host)) return 400;
  if (codings.length) {
    if (req.httpVersionMinor === 0) return 400;    // Transfer-Encoding in HTTP/1.0: faulty framing
    const names = codings.map((c) => c.trim().toLowerCase()).filter((c) => c);
    if (names.length !== 1 || names[0] !== 'chunked') return 501;
  }
  const cl = req.headers['content-length'];
  // bodies held whole are bounded: refuse at once what would exceed it (not /upload, it streams)
  if (cl !== undefined && Number(cl) > MAX_BODY && targetOf(req).path !== '/upload') return 413;
  return null;
}

// A pipelined request is handled once its response is the connection's current one (Node
// attaches it to the socket when the previous response has finished): responses then go
// straight to the socket instead of piling up in memory, which would make Node pause its
// parser (and, over TLS, fail the connection with HPE_PAUSED on a flood of requests).
function onRequest(req, res) {
  if (res.socket) handle(req, res);
  else res.once('socket', () => handle(req, res));
}

function handle(req, res) {
  // a request pipelined behind one answered with "Connection: close" is not answered
  if (req.socket && req.socket._squallClosing) { req.resume(); return; }
  const refused = refuse(req);
  if (refused) {
    req.socket._squallClosing = true;
    sendError(req, res, refused, { 'Connection': 'close' });
    req.resume();
    return;
  }
  armBodyTimeout(req, res);
  let p;
  try { p = Promise.resolve(dispatch(req, res)); } catch (e) { p = Promise.reject(e); }
  p.catch((e) => {
    const status = e instanceof HttpError ? e.status : 500;
    if (!(e instanceof HttpError)) process.stderr.write(`server.js: handler error on ${req.method} ${req.url}: ${e && e.stack || e}\n`);
    if (res.headersSent) { res.destroy(); return; }
    const extra = status === 413 || status === 400 ? { 'Connection': 'close' } : undefined;
    sendError(req, res, status, extra);
  });
}

// Body timeout: an announced body must have arrived S seconds after the request head.
function armBodyTimeout(req, res) {
  if (!opts.body) return;
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (!te && (!cl || cl === '0')) return;
  const ms = Math.round(opts.body * 1000);
  let timer = null;
  const expire = () => {
    if (req.complete) return;
    if (!res.headersSent) {
      if (req.socket) req.socket._squallClosing = true;
      sendError(req, res, 408, { 'Connection': 'close' });
    }
    setTimeout(() => req.socket && req.socket.destroy(), 50);
  };
  timer = setTimeout(expire, ms);
  const stop = () => clearTimeout(timer);
  req.on('end', stop);
  req.on('close', stop);
  res.on('close', stop);
}

// ---------------------------------------------------------------------------------------
// The server

// Heads up to 64 KiB are accepted (the suite's ~50 KB head); larger ones get 431.
const serverOptions = { maxHeaderSize: 65536 };
const headerMs = opts.header ? Math.max(1, Math.round(opts.header * 1000)) : 60000;
serverOptions.headersTimeout = headerMs;
// Node's requestTimeout bounds head and body together; with --body-timeout it is the header
// timeout plus the body timeout (the body's own deadline is armBodyTimeout, from the head).
serverOptions.requestTimeout = opts.body ? headerMs + Math.round(opts.body * 1000) : Math.max(300000, headerMs);
const smallest = Math.min(...[opts.idle, opts.header, opts.body].filter((x) => x).map((x) => x * 1000), 30000);
serverOptions.connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.round(smallest / 4)));

let server;
if (opts.certfile) {
  try {
    serverOptions.cert = fs.readFileSync(opts.certfile);
    serverOptions.key = fs.readFileSync(opts.keyfile);
  } catch (e) {
    process.stderr.write(`server.js: cannot read certificate or key: ${e.message}\n`);
    process.exit(2);
  }
  server = https.createServer(serverOptions, onRequest);
} else {
  server = http.createServer(serverOptions, onRequest);
}
server.maxHeadersCount = MAX_FIELDS + 1;

// Idle timeout: between requests (keepAliveTimeout) and on connections that carry no
// request in flight (socket inactivity). A connection with a request being answered is
// never cut by it.
if (opts.idle) {
  const idleMs = Math.max(1, Math.round(opts.idle * 1000));
  server.keepAliveTimeout = idleMs;
  server.timeout = idleMs;
  server.on('timeout', (socket) => {
    if (!socket._squallInFlight) socket.destroy();
  });
}
server.on('request', (req, res) => {
  const s = req.socket;
  s._squallInFlight = (s._squallInFlight || 0) + 1;
  res.on('close', () => { s._squallInFlight -= 1; });
});

// Requests Node's parser refuses never reach a handler: answer them here, with a Date and a
// Content-Length (Node's built-in answer has neither), and a more precise status where the
// request line shows it: 501 for a well-formed but unknown method, 505 for HTTP/2+ versions,
// 431 for a head above the limit.
const TOKEN_METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} /;
server.on('clientError', (err, socket) => {
  if (socket._squallAnswered) return;          // the parser reports again on each later chunk
  if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
  const raw = err.rawPacket ? err.rawPacket.toString('latin1') : '';
  let status = 400;
  if (err.code === 'HPE_HEADER_OVERFLOW') status = 431;
  else if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') status = 413;
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = 408;
  else if (err.code === 'HPE_INVALID_METHOD' && TOKEN_METHOD.test(raw)) status = 501;
  else if (err.code === 'HPE_INVALID_VERSION' && /^\S+ \S+ HTTP\/[2-9]\.[0-9]\r?\n/.test(raw)) status = 505;
  const reason = http.STATUS_CODES[status];
  const body = `${status} ${reason}\n`;
  const answer = () => {
    if (!socket.writable) { socket.destroy(); return; }
    socket._squallAnswered = true;
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nDate: ${new Date().toUTCString()}\r\n` +
               `Content-Type: ${TEXT}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    // Lingering close (RFC 9112 §9.6): keep reading and dropping what the client still sends
    // (the rest of an oversized head), so that closing with unread data does not reset the
    // connection and destroy the answer before the client has read it.
    socket.on('data', () => {});
    socket.resume();
    socket.once('end', () => socket.destroy());
    setTimeout(() => socket.destroy(), 5000).unref();
  };
  if (socket._squallClosing) { socket.destroy(); return; }   // already answered "close"
  const current = socket._httpMessage;
  if (current && !current.writableFinished) {
    if (current.headersSent) { socket.destroy(); return; }
    if (current.req && current.req.complete) {
      // the response to an earlier, complete request goes first
      current.once('finish', () => setImmediate(answer));
      return;
    }
    // the request being answered is the broken one (its body failed to parse): its handler
    // will never complete; this answer replaces it
    socket._squallClosing = true;
    current._squallAbandoned = true;
  }
  answer();
});

// CONNECT (authority-form): Node hands the raw socket over; an origin server refuses it.
server.on('connect', (req, socket) => {
  socket.on('error', () => {});
  socket.end('HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n' +
             'Content-Length: 20\r\nConnection: close\r\n\r\n501 Not Implemented\n');
});

const sockets = new Set();
server.on('connection', (s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  s.on('error', () => {});
});

server.on('error', (e) => {
  process.stderr.write(`server.js: ${e.message}\n`);
  process.exit(1);
});

server.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(`port=${server.address().port}\n`);
});

function shutdown() {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('uncaughtException', (e) => {
  process.stderr.write(`server.js: uncaught: ${e && e.stack || e}\n`);
});
