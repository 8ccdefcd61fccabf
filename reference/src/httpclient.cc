// AsyncHTTPClient: see squall/httpclient.h. One coroutine per fetch (run_fetch) drives the
// redirects; each hop (run_hop) takes a pooled or fresh connection, writes the request
// through HTTP1Connection and reads the response into a Collector delegate.
#include "squall/httpclient.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include "squall/http1connection.h"
#include "squall/http_parse.h"
#include "squall/httputil.h"
#include "squall/iostream.h"
#include "squall/log.h"
#include "squall/ssl_context.h"
#include "squall/tcpclient.h"

namespace squall {

// ---- errors ----------------------------------------------------------------------------

HTTPClientError::HTTPClientError(int code, std::string message, std::shared_ptr<const HTTPResponse> response)
    : std::runtime_error(fmt::format("HTTP {}: {}", code, message)),
      code_(code),
      message_(std::move(message)),
      response_(std::move(response)) {}

// ---- URLs --------------------------------------------------------------------------------

namespace {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// scheme://authority/path?query#fragment split per RFC 3986 appendix B.
struct URIParts {
  std::optional<std::string> scheme, authority, query, fragment;
  std::string path;
};

URIParts split_uri(std::string_view s) {
  URIParts p;
  size_t colon = s.find_first_of(":/?#");
  if (colon != std::string_view::npos && s[colon] == ':' && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(s[0]))) {
    p.scheme = std::string(s.substr(0, colon));
    s.remove_prefix(colon + 1);
  }
  if (s.starts_with("//")) {
    s.remove_prefix(2);
    size_t end = s.find_first_of("/?#");
    p.authority = std::string(s.substr(0, end));
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
  }
  size_t hash = s.find('#');
  if (hash != std::string_view::npos) {
    p.fragment = std::string(s.substr(hash + 1));
    s = s.substr(0, hash);
  }
  size_t q = s.find('?');
  if (q != std::string_view::npos) {
    p.query = std::string(s.substr(q + 1));
    s = s.substr(0, q);
  }
  p.path = std::string(s);
  return p;
}

std::string remove_dot_segments(std::string_view in) {
  std::string input(in), out;
  while (!input.empty()) {
    if (input.starts_with("../")) {
      input.erase(0, 3);
    } else if (input.starts_with("./")) {
      input.erase(0, 2);
    } else if (input.starts_with("/./")) {
      input.erase(0, 2);
    } else if (input == "/.") {
      input = "/";
    } else if (input.starts_with("/../") || input == "/..") {
      input = input == "/.." ? "/" : input.substr(3);
      size_t slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (input == "." || input == "..") {
      input.clear();
    } else {
      size_t next = input.find('/', input[0] == '/' ? 1 : 0);
      out += input.substr(0, next);
      input.erase(0, next == std::string::npos ? input.size() : next);
    }
  }
  return out;
}

std::string join_uri(const URIParts& p) {
  std::string out;
  if (p.scheme) out += *p.scheme + ":";
  if (p.authority) out += "//" + *p.authority;
  out += p.path;
  if (p.query) out += "?" + *p.query;
  if (p.fragment) out += "#" + *p.fragment;
  return out;
}

// Percent-encodes what may not appear raw in a request-target (controls, space, non-ASCII).
std::string encode_target(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) {
      out += fmt::format("%{:02X}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string resolve_url(std::string_view base_url, std::string_view reference) {
  URIParts r = split_uri(reference);
  URIParts b = split_uri(base_url);
  URIParts t;
  if (r.scheme) {
    t = r;
    t.path = remove_dot_segments(r.path);
  } else {
    if (r.authority) {
      t.authority = r.authority;
      t.path = remove_dot_segments(r.path);
      t.query = r.query;
    } else {
      if (r.path.empty()) {
        t.path = b.path;
        t.query = r.query ? r.query : b.query;
      } else {
        if (r.path[0] == '/') {
          t.path = remove_dot_segments(r.path);
        } else {
          std::string merged;
          if (b.authority && b.path.empty()) {
            merged = "/" + r.path;
          } else {
            size_t slash = b.path.rfind('/');
            merged = (slash == std::string::npos ? std::string() : b.path.substr(0, slash + 1)) + r.path;
          }
          t.path = remove_dot_segments(merged);
        }
        t.query = r.query;
      }
      t.authority = b.authority;
    }
    t.scheme = b.scheme;
  }
  t.fragment = r.fragment;
  return join_uri(t);
}

ParsedURL parse_http_url(std::string_view url) {
  URIParts p = split_uri(url);
  if (!p.scheme) throw std::invalid_argument(fmt::format("Invalid URL (no scheme): {:?}", url));
  ParsedURL out;
  out.scheme = lower_ascii(*p.scheme);
  if (out.scheme != "http" && out.scheme != "https") throw std::invalid_argument(fmt::format("Unsupported URL scheme: {:?}", out.scheme));
  if (!p.authority || p.authority->empty()) throw std::invalid_argument(fmt::format("Invalid URL (no host): {:?}", url));
  std::string_view authority = *p.authority;
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  out.netloc = std::string(authority);
  out.port = out.scheme == "https" ? 443 : 80;
  std::string_view port_text;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument(fmt::format("Invalid URL (bad IPv6 literal): {:?}", url));
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') throw std::invalid_argument(fmt::format("Invalid URL (bad port): {:?}", url));
      port_text = rest.substr(1);
    }
    if (!is_valid_ip(out.host)) throw std::invalid_argument(fmt::format("Invalid URL (bad IPv6 literal): {:?}", url));
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    out.host = std::string(authority);
  }
  if (out.host.empty()) throw std::invalid_argument(fmt::format("Invalid URL (no host): {:?}", url));
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '\\' || c == 0x7f) {
      throw std::invalid_argument(fmt::format("Invalid URL (bad host): {:?}", url));
    }
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw std::invalid_argument(fmt::format("Invalid URL (bad port): {:?}", url));
    }
    unsigned long port = std::stoul(std::string(port_text));
    if (port == 0 || port > 65535) throw std::invalid_argument(fmt::format("Invalid URL (bad port): {:?}", url));
    out.port = static_cast<uint16_t>(port);
  } else if (out.netloc.ends_with(":")) {
    out.netloc.pop_back();
  }
  out.target = encode_target(p.path.empty() ? std::string("/") : p.path);
  if (p.query) out.target += "?" + encode_target(*p.query);
  return out;
}

// ---- the client ------------------------------------------------------------------------------

namespace {

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

bool is_redirect(int code) { return code == 301 || code == 302 || code == 303 || code == 307 || code == 308; }

// A failure of the transport (599); the kind chooses the HTTPClientError subclass.
struct TransportError {
  enum Kind { timeout, closed, bad_response, other } kind;
  std::string message;
};

// Describes why a connection attempt failed ("Connection refused", a resolver message).
std::string describe_connect_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const StreamClosedError& e) {
    if (std::exception_ptr real = e.real_error()) {
      try {
        std::rethrow_exception(real);
      } catch (const std::system_error& se) {
        return se.code().message();
      } catch (const std::exception& other) {
        return other.what();
      }
    }
    return "Stream closed";
  } catch (const ResolveError& e) {
    return std::string("Name resolution failed: ") + e.what();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "Unknown error";
  }
}

// "Stream closed: <reason>" when a TLS error closed the stream.
std::optional<std::string> tls_close_reason(const std::exception_ptr& error) {
  if (!error) return std::nullopt;
  try {
    std::rethrow_exception(error);
  } catch (const SSLError& e) {
    return fmt::format("Stream closed: {}", e.what());
  } catch (...) {
  }
  return std::nullopt;
}

struct Connection {
  std::unique_ptr<IOStream> stream;
  std::unique_ptr<HTTP1Connection> conn;  // declared after the stream: destroyed first
  uint64_t id = 0;
  TimeoutHandle idle_timer;
};

enum class Phase { queued, connecting, requesting, done };

struct FetchState {
  HTTPRequest request;
  Future<HTTPResponse> result;
  TimePoint start;
  TimePoint deadline;
  TimeoutHandle timer;
  Phase phase = Phase::queued;
  IOStream* current_stream = nullptr;  // closed by the request timeout
  bool timed_out = false;
};

// Receives one response from HTTP1Connection.
struct Collector : HTTPMessageDelegate {
  const HTTPRequest& request;
  bool head_seen = false;
  bool finished = false;
  bool discard_body = false;  // a redirect that will be followed
  int code = 0;
  std::string reason;
  std::string version;
  HTTPHeaders headers;
  std::string body;
  std::string held;  // the piece an async_streaming_callback is consuming

  explicit Collector(const HTTPRequest& r) : request(r) {}

  bool will_follow(int c, const HTTPHeaders& h) const {
    return request.follow_redirects && request.max_redirects > 0 && is_redirect(c) && h.contains("Location");
  }
  FlowControl headers_received(const ResponseStartLine& line, HTTPHeaders& h) override {
    head_seen = true;
    code = line.code;
    reason = line.reason.empty() ? std::string(reason_phrase(line.code)) : line.reason;
    version = line.version;
    headers = h;
    discard_body = will_follow(code, h);
    if (request.header_callback && !discard_body) {
      request.header_callback(fmt::format("{} {} {}\r\n", line.version, line.code, line.reason));
      for (HeaderField f : h) request.header_callback(fmt::format("{}: {}\r\n", f.name, f.value));
      request.header_callback("\r\n");
    }
    return std::nullopt;
  }
  FlowControl data_received(std::string chunk) override {
    if (discard_body) return std::nullopt;
    if (request.async_streaming_callback) {
      held = std::move(chunk);  // valid until the consumer's future completes
      Future<void> consumed = request.async_streaming_callback(held);
      if (consumed.done()) {
        consumed.result();  // rethrows a failure
        return std::nullopt;
      }
      return consumed;
    }
    if (request.streaming_callback) {
      request.streaming_callback(chunk);
    } else if (body.empty()) {
      body = std::move(chunk);
    } else {
      body += chunk;
    }
    return std::nullopt;
  }
  void finish() override { finished = true; }
  void on_connection_close() override {}
};

// Clears FetchState::current_stream when a hop ends, however it ends.
struct CurrentStreamGuard {
  FetchState& state;
  ~CurrentStreamGuard() { state.current_stream = nullptr; }
};

}  // namespace

struct AsyncHTTPClient::Impl : std::enable_shared_from_this<AsyncHTTPClient::Impl> {
  ClientOptions options;
  IOLoop* loop;
  TCPClient tcp;
  size_t active = 0;
  std::deque<std::shared_ptr<FetchState>> queue;
  std::map<std::string, std::deque<std::unique_ptr<Connection>>> idle;
  uint64_t next_id = 1;
  size_t opened = 0;
  bool closed = false;

  // Client TLS contexts by settings: building one loads the trust store (milliseconds),
  // so it is done once per combination, not per connection.
  std::map<std::string, std::shared_ptr<const SSLContext>> ssl_contexts;

  explicit Impl(ClientOptions o) : options(std::move(o)), loop(&IOLoop::current()), tcp(options.resolver) {}

  // The context for an https request (throws SSLError if its files cannot be loaded).
  std::shared_ptr<const SSLContext> ssl_context(const HTTPRequest& request) {
    if (request.ssl_context) return request.ssl_context;
    std::string key = fmt::format("{}|{}|{}|{}", request.validate_cert ? 1 : 0, request.ca_certs, request.client_cert,
                                  request.client_key);
    std::shared_ptr<const SSLContext>& context = ssl_contexts[key];
    if (!context) {
      SSLOptions tls;
      tls.validate_cert = request.validate_cert;
      tls.ca_certs = request.ca_certs;
      tls.certfile = request.client_cert;
      tls.keyfile = request.client_key;
      try {
        context = SSLContext::client(std::move(tls));
      } catch (...) {
        ssl_contexts.erase(key);
        throw;
      }
    }
    return context;
  }

  size_t idle_count() const {
    size_t n = 0;
    for (const auto& [key, conns] : idle) n += conns.size();
    return n;
  }

  std::unique_ptr<Connection> take_idle(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    std::unique_ptr<Connection> found;
    while (!it->second.empty() && !found) {
      std::unique_ptr<Connection> c = std::move(it->second.back());
      it->second.pop_back();
      loop->remove_timeout(c->idle_timer);
      if (c->stream->closed()) continue;
      c->stream->set_close_callback({});
      found = std::move(c);
    }
    if (it->second.empty()) idle.erase(it);
    return found;
  }

  void remove_idle(const std::string& key, uint64_t id) {
    auto it = idle.find(key);
    if (it == idle.end()) return;
    auto& conns = it->second;
    for (auto c = conns.begin(); c != conns.end(); ++c) {
      if ((*c)->id == id) {
        loop->remove_timeout((*c)->idle_timer);
        conns.erase(c);
        break;
      }
    }
    if (conns.empty()) idle.erase(it);
  }

  void release(const std::string& key, std::unique_ptr<Connection> c) {
    if (closed || options.max_idle_per_host == 0 || c->stream->closed()) return;
    auto& conns = idle[key];
    if (conns.size() >= options.max_idle_per_host) {
      // Drop the oldest idle one to keep the freshest.
      loop->remove_timeout(conns.front()->idle_timer);
      conns.pop_front();
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    uint64_t id = c->id;
    c->stream->set_close_callback([weak, key, id] {
      if (auto self = weak.lock()) self->remove_idle(key, id);
    });
    c->idle_timer = loop->call_later(options.idle_timeout, [weak, key, id] {
      if (auto self = weak.lock()) self->remove_idle(key, id);
    });
    conns.push_back(std::move(c));
  }

  void close_idle() {
    for (auto& [key, conns] : idle) {
      for (auto& c : conns) loop->remove_timeout(c->idle_timer);
    }
    idle.clear();
  }

  void start(std::shared_ptr<FetchState> state);
  void pump();
};

namespace {

// Completes the fetch's future (once): with the response, or with its error.
void complete(const std::shared_ptr<FetchState>& state, HTTPResponse response) {
  if (state->result.done()) return;
  IOLoop::current().remove_timeout(state->timer);
  state->phase = Phase::done;
  response.request_time = std::chrono::duration<double>(Clock::now() - state->start).count();
  if (response.code < 200 || response.code >= 300) {
    auto snapshot = std::make_shared<const HTTPResponse>(response);
    std::string message = response.reason.empty() ? std::string(reason_phrase(response.code)) : response.reason;
    response.error = std::make_exception_ptr(HTTPClientError(response.code, message, snapshot));
    response.error_message = fmt::format("HTTP {}: {}", response.code, message);
  }
  if (response.error && state->request.raise_error) {
    state->result.set_exception(response.error);
  } else {
    state->result.set_result(std::move(response));
  }
}

void fail(const std::shared_ptr<FetchState>& state, const TransportError& error, const std::string& url) {
  if (state->result.done()) return;
  IOLoop::current().remove_timeout(state->timer);
  state->phase = Phase::done;
  HTTPResponse response;
  response.request = state->request;
  response.code = 599;
  response.reason = "Unknown";
  response.effective_url = url;
  response.request_time = std::chrono::duration<double>(Clock::now() - state->start).count();
  response.error_message = fmt::format("HTTP 599: {}", error.message);
  auto snapshot = std::make_shared<const HTTPResponse>(response);
  std::exception_ptr e;
  switch (error.kind) {
    case TransportError::timeout:
      e = std::make_exception_ptr(HTTPTimeoutError(599, error.message, snapshot));
      break;
    case TransportError::closed:
      e = std::make_exception_ptr(HTTPStreamClosedError(599, error.message, snapshot));
      break;
    case TransportError::bad_response:
      e = std::make_exception_ptr(HTTPBadResponseError(599, error.message, snapshot));
      break;
    default:
      e = std::make_exception_ptr(HTTPClientError(599, error.message, snapshot));
  }
  // The snapshot does not point back at e (that would be a reference cycle); its
  // error_message says what happened.
  state->result.set_exception(e);
}

// Connections are reused only for requests that would have made the same one: same
// scheme (an http connection never carries an https request, nor the reverse), origin,
// limits and, for https, the same TLS settings (a connection validated against one CA is
// not lent to a request that trusts another).
std::string pool_key(const ParsedURL& url, const HTTPRequest& request) {
  std::string key = fmt::format("{}|{}|{}|{}|{}|{}", url.scheme, url.host, url.port, request.decompress_response ? 1 : 0,
                                request.max_header_size, request.max_body_size);
  if (url.scheme == "https") {
    key += fmt::format("|{}|{}|{}|{}|{}", request.validate_cert ? 1 : 0, request.ca_certs, request.client_cert,
                       request.client_key, static_cast<const void*>(request.ssl_context.get()));
  }
  return key;
}

void check_body_rules(const HTTPRequest& request) {
  if (request.allow_nonstandard_methods) return;
  bool expected = request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  bool present = request.body.has_value() || static_cast<bool>(request.body_producer);
  if (expected != present) {
    throw std::invalid_argument(fmt::format("Body must {}be None for method {} (unless allow_nonstandard_methods is true)",
                                            expected ? "not " : "", request.method));
  }
}

HTTPHeaders build_headers(const HTTPRequest& request, const ParsedURL& url, const ClientOptions& options) {
  HTTPHeaders headers;
  if (!request.headers.contains("Host")) headers.add("Host", url.netloc);
  for (HeaderField f : request.headers) {
    if (!is_token(f.name) || !is_valid_field_value(f.value)) {
      throw std::invalid_argument(fmt::format("Invalid request header: {:?}", f.name));
    }
    headers.add(f.name, f.value);
  }
  if (!headers.contains("Authorization")) {
    std::string user = request.auth_username, password = request.auth_password;
    if (user.empty() && !url.userinfo.empty()) {
      size_t colon = url.userinfo.find(':');
      user = url_unquote(std::string_view(url.userinfo).substr(0, colon));
      if (colon != std::string::npos) password = url_unquote(std::string_view(url.userinfo).substr(colon + 1));
    }
    if (!user.empty()) headers.add("Authorization", "Basic " + base64_encode(user + ":" + password));
  }
  if (!request.user_agent.empty()) {
    headers.set("User-Agent", request.user_agent);
  } else if (!headers.contains("User-Agent")) {
    headers.add("User-Agent", options.default_user_agent);
  }
  if (request.expect_100_continue && (request.body || request.body_producer)) headers.set("Expect", "100-continue");
  if (request.body) headers.set("Content-Length", std::to_string(request.body->size()));
  if (request.method == "POST" && !headers.contains("Content-Type")) {
    headers.add("Content-Type", "application/x-www-form-urlencoded");
  }
  if (request.decompress_response && !headers.contains("Accept-Encoding")) headers.add("Accept-Encoding", "gzip");
  return headers;
}

struct HopResult {
  HTTPResponse response;
  std::optional<TransportError> error;
};

// One request/response exchange (with the one retry of a dead pooled connection).
Task<HopResult> run_hop(std::shared_ptr<AsyncHTTPClient::Impl> impl, std::shared_ptr<FetchState> state,
                        HTTPRequest request) {
  HopResult out;
  ParsedURL url;
  HTTPHeaders headers;
  try {
    url = parse_http_url(request.url);
    headers = build_headers(request, url, impl->options);
  } catch (const std::exception& e) {
    out.error = TransportError{TransportError::other, e.what()};
    co_return out;
  }
  const std::string key = pool_key(url, request);
  const bool expect_continue = request.expect_100_continue && headers.contains("Expect");
  bool retried = false;
  for (;;) {
    std::unique_ptr<Connection> c;
    if (!expect_continue) c = impl->take_idle(key);
    const bool reused = c != nullptr;
    if (!c) {
      state->phase = Phase::connecting;
      Duration remaining = state->deadline - Clock::now();
      Duration timeout = std::min(request.connect_timeout, remaining);
      if (timeout <= Duration::zero()) timeout = Duration(1);
      HTTP1ConnectionParameters params;
      params.decompress = request.decompress_response;
      params.max_header_size = request.max_header_size;
      params.max_body_size = request.max_body_size;
      // request_timeout bounds the whole exchange, as in Tornado: no separate server-side
      // style timeouts (a slow but steady download may take as long as it is allowed).
      params.header_timeout.reset();
      params.body_timeout.reset();
      params.send_timeout.reset();
      std::unique_ptr<IOStream> stream;
      std::exception_ptr connect_error;
      bool connect_timed_out = false;
      try {
        std::shared_ptr<const SSLContext> tls;
        if (url.scheme == "https") tls = impl->ssl_context(request);
        Future<std::unique_ptr<IOStream>> connecting =
            impl->tcp.connect(url.host, url.port, timeout, IOStreamOptions{}, AF_UNSPEC, std::move(tls));
        stream = co_await connecting;
      } catch (const TimeoutError&) {
        connect_timed_out = true;
      } catch (...) {
        connect_error = std::current_exception();
      }
      if (state->timed_out) co_return out;
      if (connect_timed_out) {
        out.error = TransportError{TransportError::timeout, "Timeout while connecting"};
        co_return out;
      }
      if (connect_error) {
        out.error = TransportError{TransportError::other, describe_connect_error(connect_error)};
        co_return out;
      }
      c = std::make_unique<Connection>();
      c->id = impl->next_id++;
      ++impl->opened;
      c->stream = std::move(stream);
      c->conn = std::make_unique<HTTP1Connection>(*c->stream, HTTP1Connection::Side::client, params);
    }
    state->phase = Phase::requesting;
    state->current_stream = c->stream.get();
    CurrentStreamGuard guard{*state};

    Collector collector(request);
    bool keep_alive = false;
    std::optional<std::string> error_message;
    bool closed_error = false;
    bool bad_response = false;
    bool early_final = false;  // expect-100: the server answered without 100 Continue
    try {
      RequestStartLine line{request.method, url.target, "HTTP/1.1"};
      HTTPHeaders to_send = headers;
      if (request.body && !expect_continue) {
        Future<void> head_written = c->conn->write_headers(line, to_send, *request.body);
        co_await head_written;
      } else {
        Future<void> head_written = c->conn->write_headers(line, to_send);
        co_await head_written;
      }
      if (expect_continue) {
        // A fresh connection: nothing is buffered in the HTTP1Connection yet, so the
        // interim response can be read from the stream directly.
        Future<std::string> interim_read = c->stream->read_until("\r\n\r\n", request.max_header_size);
        std::string interim = co_await interim_read;
        ParseResult<ResponseHead> parsed = parse_response_head(interim);
        parsed.throw_if_error<HTTPInputError>();
        if (parsed->start_line.code != 100) {
          early_final = true;
          collector.head_seen = true;
          collector.finished = true;
          collector.code = parsed->start_line.code;
          collector.reason = std::string(parsed->start_line.reason);
          collector.headers = std::move(parsed->headers);
        } else if (request.body) {
          Future<void> body_written = c->conn->write(*request.body);
          co_await body_written;
        }
      }
      if (!early_final) {
        if (request.body_producer) {
          HTTP1Connection* conn = c->conn.get();
          BodyWriter writer = [conn](std::string_view piece) { return conn->write(piece); };
          Future<void> produced = request.body_producer(writer);
          co_await produced;
        }
        c->conn->finish();
        keep_alive = co_await c->conn->read_response(collector);
      }
    } catch (const HTTPConnectionClosedError& e) {
      // A response cut short by the peer: a closed stream, not a malformed response.
      closed_error = true;
      error_message = fmt::format("Stream closed: {}", e.what());
    } catch (const HTTPInputError& e) {
      bad_response = true;
      error_message = fmt::format("Bad response: {}", e.what());
    } catch (const StreamClosedError&) {
      closed_error = true;
    } catch (const UnsatisfiableReadError&) {
      bad_response = true;
      error_message = "Bad response: Header too large";
    } catch (const std::exception& e) {
      error_message = e.what();
    }
    if (state->timed_out) co_return out;
    if (!error_message && !closed_error && collector.finished) {
      out.response.code = collector.code;
      out.response.reason = collector.reason;
      out.response.headers = std::move(collector.headers);
      out.response.body = std::move(collector.body);
      if (keep_alive && !early_final && !c->stream->closed()) impl->release(key, std::move(c));
      co_return out;
    }
    if (!error_message && !collector.finished) closed_error = true;
    // A pooled connection that died before any response byte: retry once, fresh.
    if (closed_error && reused && !retried && !collector.head_seen && is_idempotent(request.method) &&
        !request.body_producer) {
      retried = true;
      continue;
    }
    if (error_message && !closed_error) {
      out.error = TransportError{bad_response ? TransportError::bad_response : TransportError::other, *error_message};
    } else {
      // A TLS alert closed it (TLS 1.3 reports a refused client certificate only after
      // the handshake): say so rather than just "Stream closed".
      if (!error_message) error_message = tls_close_reason(c->stream->error());
      out.error = TransportError{TransportError::closed, error_message.value_or("Stream closed")};
    }
    co_return out;
  }
}

Task<void> run_fetch(std::shared_ptr<AsyncHTTPClient::Impl> impl, std::shared_ptr<FetchState> state) {
  HTTPRequest request = state->request;
  for (;;) {
    std::string url = request.url;
    HopResult hop = co_await run_hop(impl, state, request);
    if (state->timed_out || state->result.done()) co_return;
    if (hop.error) {
      fail(state, *hop.error, url);
      co_return;
    }
    HTTPResponse& response = hop.response;
    std::optional<std::string> location = response.headers.get("Location");
    if (request.follow_redirects && request.max_redirects > 0 && is_redirect(response.code) && location) {
      HTTPRequest next = request;
      next.url = resolve_url(request.url, *location);
      next.max_redirects = request.max_redirects - 1;
      next.headers.remove("Host");
      if ((response.code == 301 || response.code == 302 || response.code == 303) && request.method != "HEAD") {
        next.method = "GET";
        next.body.reset();
        next.body_producer = nullptr;
        for (const char* name : {"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding"}) {
          next.headers.remove(name);
        }
      }
      // Credentials stay with their origin.
      try {
        ParsedURL from = parse_http_url(request.url);
        ParsedURL to = parse_http_url(next.url);
        if (from.scheme != to.scheme || from.host != to.host || from.port != to.port) {
          next.headers.remove("Authorization");
          next.auth_username.clear();
          next.auth_password.clear();
        }
      } catch (const std::exception&) {
        // The next hop reports the bad URL.
      }
      request = std::move(next);
      continue;
    }
    response.request = request;
    response.effective_url = request.url;
    complete(state, std::move(response));
    co_return;
  }
}

}  // namespace

void AsyncHTTPClient::Impl::start(std::shared_ptr<FetchState> state) {
  ++active;
  state->phase = Phase::connecting;
  std::shared_ptr<Impl> self = shared_from_this();
  Task<void> task = run_fetch(self, state);
  task.future().add_done_callback([self, state](Future<void>& f) {
    if (auto error = f.exception()) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        TransportError te{TransportError::other, e.what()};
        fail(state, te, state->request.url);
      } catch (...) {
        TransportError te{TransportError::other, "Unknown error"};
        fail(state, te, state->request.url);
      }
    }
    --self->active;
    self->pump();
  });
}

void AsyncHTTPClient::Impl::pump() {
  while (active < options.max_clients && !queue.empty()) {
    std::shared_ptr<FetchState> next = std::move(queue.front());
    queue.pop_front();
    if (next->result.done()) continue;  // timed out in the queue
    start(std::move(next));
  }
}

AsyncHTTPClient::AsyncHTTPClient(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  if (impl_->options.max_clients == 0) impl_->options.max_clients = 1;
}

AsyncHTTPClient::~AsyncHTTPClient() { close(); }

void AsyncHTTPClient::close() {
  impl_->closed = true;
  impl_->close_idle();
}

size_t AsyncHTTPClient::active_count() const { return impl_->active; }
size_t AsyncHTTPClient::queued_count() const {
  return static_cast<size_t>(std::count_if(impl_->queue.begin(), impl_->queue.end(),
                                           [](const auto& s) { return !s->result.done(); }));
}
size_t AsyncHTTPClient::idle_connection_count() const { return impl_->idle_count(); }
size_t AsyncHTTPClient::connections_opened() const { return impl_->opened; }

Future<HTTPResponse> AsyncHTTPClient::fetch(HTTPRequest request) {
  auto state = std::make_shared<FetchState>();
  Future<HTTPResponse> result = state->result;
  try {
    parse_http_url(request.url);
    check_body_rules(request);
  } catch (...) {
    result.set_exception(std::current_exception());
    return result;
  }
  state->request = std::move(request);
  state->start = Clock::now();
  state->deadline = state->start + state->request.request_timeout;
  IOLoop& loop = IOLoop::current();
  std::weak_ptr<FetchState> weak = state;
  state->timer = loop.call_at(state->deadline, [weak] {
    std::shared_ptr<FetchState> s = weak.lock();
    if (!s || s->result.done()) return;
    const char* message = s->phase == Phase::queued       ? "Timeout in request queue"
                          : s->phase == Phase::connecting ? "Timeout while connecting"
                                                          : "Timeout during request";
    s->timer = {};
    TransportError te{TransportError::timeout, message};
    fail(s, te, s->request.url);
    s->timed_out = true;
    if (s->current_stream) s->current_stream->close();
  });
  if (impl_->active < impl_->options.max_clients) {
    impl_->start(state);
  } else {
    impl_->queue.push_back(state);
  }
  return result;
}

}  // namespace squall
