#!/usr/bin/env node
// Squall contract §4 (client adapter), written in plain Node.js from the contract text alone.
// Standard library only; runs on Node 18 and 20.
//
//   node fetch.js fetch URL [options]      (see --help)
//
// One fetch with Node's http/https client; prints one JSON object on stdout:
//   {"code", "reason", "headers": [[name, value], ...], "body_b64", "effective_url", "error"}
// Timeouts and connection errors are code 599 with a short error string. Exit status 0
// whenever the JSON object was printed, 2 on bad usage.
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');
const zlib = require('zlib');

const USAGE = `usage: node fetch.js fetch URL [options]

  --method M              request method (default GET, or POST with --body-file)
  --header 'K: V'         add a request header (repeatable, sent in the order given)
  --body-file F           send the contents of file F as the request body
  --connect-timeout S     seconds to establish the connection (default 20)
  --request-timeout S     seconds for the whole fetch, redirects included (default 20)
  --max-redirects N       follow at most N redirects (default 5); one more is an error (599);
                          303 turns a method into GET, 301/302 turn POST into GET, 307/308 keep it
  --no-follow             do not follow redirects: the 3xx response is the result
  --decompress            send Accept-Encoding: gzip and decode a gzip body (default)
  --no-decompress         send no Accept-Encoding and keep the body as received
  --max-body-size B       a response body above B bytes is an error (599; default 104857600)
  --ca-certs FILE         trust the CA certificates (PEM) in FILE instead of the system store
  --insecure, -k          do not validate the server's certificate
  --json                  accepted for compatibility: the output is always JSON
  --help, -h              this text
`;

function usage(msg) {
  if (msg) process.stderr.write(`fetch.js: ${msg}\n`);
  process.stderr.write(USAGE);
  process.exit(2);
}

function parseArgs(argv) {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE); process.exit(0); }
  if (argv[0] !== 'fetch') usage('the first argument must be "fetch"');
  if (argv.length < 2 || argv[1].startsWith('--')) usage('a URL is required');
  const o = {
    url: argv[1], method: null, headers: [], bodyFile: null, connectTimeout: 20, requestTimeout: 20,
    maxRedirects: 5, follow: true, decompress: true, maxBody: 104857600, caCerts: null, insecure: false,
  };
  const seconds = (name, v) => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n <= 0) usage(`${name} needs a positive number of seconds`);
    return n;
  };
  const count = (name, v) => {
    if (v === undefined || !/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) usage(`${name} needs a non-negative integer`);
    return Number(v);
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { i += 1; if (i >= argv.length) usage(`${a} needs a value`); return argv[i]; };
    switch (a) {
      case '--method': {
        const m = next();
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(m)) usage('--method needs a token');
        o.method = m; break;
      }
      case '--header': {
        const h = next();
        const colon = h.indexOf(':');
        if (colon <= 0) usage(`--header needs 'Name: value', got ${JSON.stringify(h)}`);
        o.headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
        break;
      }
      case '--body-file': o.bodyFile = next(); break;
      case '--connect-timeout': o.connectTimeout = seconds(a, next()); break;
      case '--request-timeout': o.requestTimeout = seconds(a, next()); break;
      case '--max-redirects': o.maxRedirects = count(a, next()); o.follow = true; break;
      case '--no-follow': o.follow = false; break;
      case '--decompress': o.decompress = true; break;
      case '--no-decompress': o.decompress = false; break;
      case '--max-body-size': o.maxBody = count(a, next()); break;
      case '--ca-certs': o.caCerts = next(); break;
      case '--insecure': case '-k': o.insecure = true; break;
      case '--json': break;
      default: usage(`unknown argument ${a}`);
    }
  }
  let url;
  try { url = new URL(o.url); } catch (e) { usage(`not a URL: ${o.url}`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') usage(`unsupported scheme ${url.protocol}`);
  o.parsedUrl = url;
  if (o.bodyFile !== null) {
    try { o.body = fs.readFileSync(o.bodyFile); } catch (e) { usage(`cannot read ${o.bodyFile}: ${e.message}`); }
  } else {
    o.body = null;
  }
  if (o.caCerts !== null) {
    try { o.ca = fs.readFileSync(o.caCerts); } catch (e) { usage(`cannot read ${o.caCerts}: ${e.message}`); }
  }
  if (o.method === null) o.method = o.body !== null ? 'POST' : 'GET';
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const started = Date.now();
const deadline = started + opts.requestTimeout * 1000;

// ---------------------------------------------------------------------------------------
// Output: exactly one JSON object, then exit 0.

let printed = false;
function emit(result) {
  if (printed) return;
  printed = true;
  const out = {
    code: result.code,
    reason: result.reason,
    headers: result.headers || [],
    body_b64: (result.body || Buffer.alloc(0)).toString('base64'),
    effective_url: result.url,
    error: result.error === undefined ? null : result.error,
  };
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
}
function emitError(url, error, partial) {
  emit(Object.assign({ code: 599, reason: 'Unknown', headers: [], body: null }, partial || {}, { url, error }));
}

// Never outlive the request timeout, whatever happens below.
setTimeout(() => emitError(currentUrl, 'Timeout'), Math.max(0, deadline - Date.now()) + 50);

// ---------------------------------------------------------------------------------------
// One exchange: resolves {status, reason, headers, body} or rejects with a short message.

class FetchError extends Error {}

// One keep-alive agent per scheme: a redirect to the same origin reuses the connection.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 1 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 1 }),
};

function exchange(url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const options = {
      method,
      host,
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: (url.pathname || '/') + url.search,
      agent: agents[url.protocol],
      setHost: false,
      headers: {},
    };
    if (url.protocol === 'https:') {
      if (opts.ca) options.ca = opts.ca;
      options.rejectUnauthorized = !opts.insecure;
      if (!/^[0-9.]+$/.test(host) && !host.includes(':')) options.servername = host;
    }
    let settled = false;
    let connectTimer = null, requestTimer = null;
    const done = (fn, v) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(requestTimer);
      fn(v);
    };
    const fail = (msg) => { done(reject, new FetchError(msg)); req.destroy(); };

    let req;
    try {
      req = lib.request(options);
      // Headers in the order given, names as given; a repeated name is sent once per value.
      const grouped = new Map();
      for (const [k, v] of headers) {
        const key = k.toLowerCase();
        if (!grouped.has(key)) grouped.set(key, [k, []]);
        grouped.get(key)[1].push(v);
      }
      for (const [, [name, values]] of grouped) req.setHeader(name, values.length === 1 ? values[0] : values);
    } catch (e) {
      if (req) req.destroy();
      reject(new FetchError(`invalid request: ${e.message}`));
      return;
    }

    connectTimer = setTimeout(() => fail('Timeout while connecting'), Math.round(opts.connectTimeout * 1000));
    requestTimer = setTimeout(() => fail('Timeout'), Math.max(0, deadline - Date.now()));
    req.on('socket', (sock) => {
      const connected = () => clearTimeout(connectTimer);
      if (!sock.connecting) connected(); else sock.once('connect', connected);
    });
    let response = null;
    req.on('error', (e) => {
      // Bytes after a complete response (beyond its Content-Length, after the last chunk) are
      // not part of it: the parser's complaint about them does not fail the fetch; the
      // response still ends normally.
      if (response && response.complete) return;
      fail(describe(e));
    });
    req.on('response', (res) => {
      response = res;
      const status = res.statusCode;
      const reason = res.statusMessage || '';
      const raw = res.rawHeaders;
      const list = [];
      for (let i = 0; i + 1 < raw.length; i += 2) list.push([raw[i], raw[i + 1]]);
      const partial = { code: status, reason, headers: list };
      const cl = res.headers['content-length'];
      if (cl !== undefined && /^[0-9]+$/.test(cl) && Number(cl) > opts.maxBody) {
        fail(`Body too large: Content-Length ${cl} > ${opts.maxBody}`);
        return;
      }
      const parts = [];
      let size = 0;
      res.on('data', (chunk) => {
        if (settled) return;
        size += chunk.length;
        if (size > opts.maxBody) { fail(`Body too large: more than ${opts.maxBody} bytes`); return; }
        parts.push(chunk);
      });
      res.on('aborted', () => fail('Connection closed before the body was complete'));
      res.on('error', (e) => fail(res.complete ? describe(e) : 'Connection closed before the body was complete'));
      res.on('end', () => {
        if (!res.complete) { fail('Connection closed before the body was complete'); return; }
        done(resolve, Object.assign(partial, { body: Buffer.concat(parts, size) }));
      });
      res.on('close', () => {
        if (!settled) fail('Connection closed before the body was complete');
      });
    });
    if (body !== null) req.end(body); else req.end();
  });
}

function describe(e) {
  if (!e) return 'error';
  const code = e.code ? `${e.code}: ` : '';
  const msg = String(e.message || e).split('\n')[0];
  return (code + msg).slice(0, 200);
}

// ---------------------------------------------------------------------------------------
// The fetch: redirects and decompression around single exchanges.

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const BODY_HEADERS = new Set(['content-length', 'content-type', 'transfer-encoding', 'content-encoding']);
let currentUrl = opts.parsedUrl.href;

function requestHeaders(url, headers, body, firstHop) {
  const out = [];
  const has = (name) => headers.some(([k]) => k.toLowerCase() === name);
  if (!has('host') || !firstHop) out.push(['Host', url.host]);
  for (const [k, v] of headers) {
    if (!firstHop && k.toLowerCase() === 'host') continue;
    out.push([k, v]);
  }
  if (opts.decompress && !has('accept-encoding')) out.push(['Accept-Encoding', 'gzip']);
  if (body !== null && !has('content-length') && !has('transfer-encoding')) out.push(['Content-Length', String(body.length)]);
  return out;
}

async function main() {
  let url = opts.parsedUrl;
  let method = opts.method;
  let headers = opts.headers.slice();
  let body = opts.body;
  if (body === null && ['POST', 'PUT', 'PATCH'].includes(method.toUpperCase())) body = Buffer.alloc(0);
  let redirects = 0;
  for (let hop = 0; ; hop++) {
    currentUrl = url.href;
    let r;
    try {
      r = await exchange(url, method, requestHeaders(url, headers, body, hop === 0), body);
    } catch (e) {
      emitError(url.href, e instanceof FetchError ? e.message : describe(e));
      return;
    }
    const location = r.headers.find(([k]) => k.toLowerCase() === 'location');
    if (opts.follow && REDIRECTS.has(r.code) && location) {
      if (redirects >= opts.maxRedirects) {
        emitError(url.href, `Too many redirects (more than ${opts.maxRedirects})`,
                  { code: 599, reason: 'Unknown', headers: r.headers, body: null });
        return;
      }
      redirects += 1;
      let next;
      try { next = new URL(location[1], url); } catch (e) { emitError(url.href, `Bad Location: ${location[1]}`); return; }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') { emitError(url.href, `Unsupported redirect scheme ${next.protocol}`); return; }
      const upper = method.toUpperCase();
      // 303: GET (HEAD stays HEAD). 301/302: only POST becomes GET (RFC 9110 §15.4.2, §15.4.3
      // allow that change for POST alone). 307/308: method and body kept.
      if ((r.code === 303 && upper !== 'HEAD') || ((r.code === 301 || r.code === 302) && upper === 'POST')) {
        method = 'GET';
        body = null;
        headers = headers.filter(([k]) => !BODY_HEADERS.has(k.toLowerCase()));
      }
      url = next;
      continue;
    }
    let payload = r.body;
    const enc = r.headers.filter(([k]) => k.toLowerCase() === 'content-encoding').map(([, v]) => v.trim().toLowerCase());
    if (opts.decompress && payload.length > 0 && enc.length === 1 && (enc[0] === 'gzip' || enc[0] === 'x-gzip')) {
      try {
        payload = zlib.gunzipSync(payload, { maxOutputLength: Math.max(1, opts.maxBody) });
      } catch (e) {
        const tooBig = e instanceof RangeError || e.code === 'ERR_BUFFER_TOO_LARGE';
        emitError(url.href, tooBig ? `Body too large: more than ${opts.maxBody} bytes decoded` : `Bad gzip body: ${describe(e)}`);
        return;
      }
    }
    emit({ code: r.code, reason: r.reason, headers: r.headers, body: payload, url: url.href, error: null });
    return;
  }
}

process.on('uncaughtException', (e) => emitError(currentUrl, `internal error: ${describe(e)}`));
main();
