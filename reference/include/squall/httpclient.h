// AsyncHTTPClient: an asynchronous HTTP/1.1 client — Tornado's httpclient and
// simple_httpclient, plus a keep-alive connection pool.
//
//   squall::AsyncHTTPClient client;
//   squall::HTTPResponse response = co_await client.fetch("http://127.0.0.1:8888/");
//
// fetch() resolves and connects (TCPClient), writes the request line and headers (Host,
// User-Agent, Accept-Encoding: gzip when decompressing, Content-Length or chunked for a
// body) through an HTTP1Connection in client mode, reads the response with it (HEAD,
// 1xx, 204 and 304 have no body; chunked, Content-Length or read-until-close bodies; gzip
// decoded), follows redirects and completes the future with an HTTPResponse.
//
// Errors, as Tornado 6.2: a response whose code is not 2xx fails the future with
// HTTPClientError carrying the response, unless request.raise_error is false (then the
// response is returned, with `error` set). Transport failures — timeouts, refused
// connections, a connection closed mid-response, a malformed or oversized response —
// always fail the future with HTTPClientError whose code() is 599 and whose response()
// is a 599 response carrying the message ("Timeout while connecting", "Timeout during
// request", "Timeout in request queue", "Stream closed", "Connection refused", ...).
// Its class says which failure it was, for callers that react to one of them:
// HTTPTimeoutError, HTTPStreamClosedError, HTTPBadResponseError (below).
// A request that breaks the body rules (POST/PUT/PATCH without a body, a body on any
// other method, unless allow_nonstandard_methods) or has an unsupported URL fails with
// std::invalid_argument.
//
// HTTPS as Tornado's: the server's certificate is validated by default — against
// request.ca_certs, or the system store (Debian's ca-certificates) — including its host
// name or IP address (SAN), with SNI; request.client_cert / client_key present a client
// certificate; validate_cert = false accepts any certificate (for tests); ssl_context
// overrides all of these. A certificate that does not validate fails the fetch with 599
// and OpenSSL's reason ("certificate verify failed: certificate has expired", "...:
// hostname mismatch, certificate is not valid for 'example.org'").
//
// Beyond Tornado's simple client, connections are kept alive and reused: one pool per
// (scheme, host, port, connection limits, TLS settings); at most ClientOptions::max_idle_per_host idle
// connections per key, each closed after idle_timeout or when the server closes it. A
// request sent on a pooled connection that dies before any response byte arrives is
// retried once on a fresh connection, for idempotent methods only (GET, HEAD, OPTIONS,
// PUT, DELETE, TRACE) and only when the body can be replayed (no body_producer).
//
// At most max_clients requests are in flight; the others wait in a FIFO queue, and the
// time spent there counts against request_timeout.
//
// "http" and "https" URLs; IPv6 literals in brackets; the default port is 80 (443 for
// https); userinfo in the URL becomes basic auth unless auth_username is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "squall/future.h"
#include "squall/http_headers.h"
#include "squall/http_parse.h"
#include "squall/ioloop.h"
#include "squall/netutil.h"
#include "squall/ssl_context.h"
#include "squall/task.h"

namespace squall {

// Writes one piece of a streamed request body; completes when the piece was sent.
using BodyWriter = std::function<Future<void>(std::string_view)>;
// Produces a streamed request body by calling the writer (Tornado's body_producer).
// A coroutine returning Task<void> can be adapted with `.future()`.
using BodyProducer = std::function<Future<void>(BodyWriter)>;

struct HTTPRequest {
  HTTPRequest() = default;
  HTTPRequest(std::string u) : url(std::move(u)) {}  // NOLINT: implicit, as fetch("url")
  HTTPRequest(const char* u) : url(u) {}              // NOLINT

  std::string url;
  std::string method = "GET";
  HTTPHeaders headers;
  std::optional<std::string> body;  // nullopt = no body (differs from an empty body)
  BodyProducer body_producer;       // streaming upload (chunked unless Content-Length is set)
  Duration connect_timeout = std::chrono::seconds(20);
  Duration request_timeout = std::chrono::seconds(20);  // whole fetch, queue time included
  bool follow_redirects = true;
  int max_redirects = 5;
  bool decompress_response = true;
  // Each body piece as it arrives; the response body then stays empty. The pieces are
  // at most 64 KiB and the next is read only after the callback returns, so the client
  // holds one piece (plus the stream's read buffer) however fast the server sends.
  std::function<void(std::string_view)> streaming_callback;
  // The same with flow control, for a consumer that passes the bytes on asynchronously
  // (to a slow socket, a file): the next piece is read only once the returned future
  // completes, and the piece stays valid until then; a failed future fails the fetch
  // (599). Used instead of streaming_callback when set.
  std::function<Future<void>(std::string_view)> async_streaming_callback;
  // Each header line as received ("HTTP/1.1 200 OK\r\n", "Name: value\r\n", then "\r\n").
  std::function<void(std::string_view)> header_callback;
  std::string auth_username;  // basic auth
  std::string auth_password;
  std::string user_agent;  // "" = "Squall/1.0"
  size_t max_header_size = kDefaultMaxHeaderSize;
  // The largest response body: checked against Content-Length before the body is read,
  // and against what arrived (decompressed) for chunked or close-delimited bodies. It
  // bounds what a response held whole costs; streamed bodies are bounded by it too.
  size_t max_body_size = kDefaultMaxBodySize;
  bool expect_100_continue = false;
  bool allow_nonstandard_methods = false;
  bool raise_error = true;
  // https only (Tornado's names).
  bool validate_cert = true;  // verify the chain and the host name
  std::string ca_certs;       // PEM file of trusted CAs; "" = the system store
  std::string client_cert;    // PEM client certificate (and key, unless client_key)
  std::string client_key;
  std::shared_ptr<const SSLContext> ssl_context;  // a client context to use instead of the above
};

struct HTTPResponse {
  HTTPRequest request;  // the request that produced this response (the last redirect)
  int code = 0;
  std::string reason;
  HTTPHeaders headers;
  std::string body;
  std::string effective_url;
  double request_time = 0;  // seconds, from fetch() to completion, redirects included
  // Set for responses that are errors (non-2xx: an HTTPClientError; 599: the failure).
  std::exception_ptr error;
  std::string error_message;  // what() of error, "" when none

  // Throws error if set.
  void rethrow() const {
    if (error) std::rethrow_exception(error);
  }
};

// Tornado's HTTPClientError: code() is the HTTP status or 599; response() the response
// (never null when raised by fetch). what() is "HTTP 404: Not Found" / "HTTP 599: <msg>".
class HTTPClientError : public std::runtime_error {
 public:
  HTTPClientError(int code, std::string message, std::shared_ptr<const HTTPResponse> response = nullptr);
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::shared_ptr<const HTTPResponse>& response() const { return response_; }

 private:
  int code_;
  std::string message_;
  std::shared_ptr<const HTTPResponse> response_;
};

// 599 for a timeout (connecting, during the request, in the queue).
class HTTPTimeoutError : public HTTPClientError {
 public:
  using HTTPClientError::HTTPClientError;
};

// 599 for a connection closed before the response was complete.
class HTTPStreamClosedError : public HTTPClientError {
 public:
  using HTTPClientError::HTTPClientError;
};

// 599 for a response the client refuses to read: a malformed status line or head, a head
// over max_header_size, bad framing (message() starts "Bad response: ").
class HTTPBadResponseError : public HTTPClientError {
 public:
  using HTTPClientError::HTTPClientError;
};

struct ClientOptions {
  size_t max_clients = 10;
  size_t max_idle_per_host = 4;                      // 0 disables keep-alive reuse
  Duration idle_timeout = std::chrono::seconds(60);  // an idle pooled connection is closed after this
  Resolver* resolver = nullptr;                      // must outlive the client; nullptr = default
  std::string default_user_agent = "Squall/1.0";
};

// A parsed http(s) URL (what the client needs of it).
struct ParsedURL {
  std::string scheme;    // lower-cased
  std::string userinfo;  // before '@', still percent-encoded
  std::string host;      // without brackets for IPv6
  uint16_t port = 80;    // 443 for https unless given
  std::string netloc;  // host[:port] as written, without userinfo (the Host header)
  std::string target;  // path (at least "/") and "?query"; the fragment is dropped
};
// Throws std::invalid_argument ("Unsupported URL scheme", "Invalid URL ...").
ParsedURL parse_http_url(std::string_view url);
// RFC 3986 §5.2 reference resolution (what a browser does with a relative Location).
std::string resolve_url(std::string_view base, std::string_view reference);

class AsyncHTTPClient {
 public:
  explicit AsyncHTTPClient(ClientOptions options = {});
  // Closes idle connections; fetches in flight finish on their own.
  ~AsyncHTTPClient();
  AsyncHTTPClient(const AsyncHTTPClient&) = delete;
  AsyncHTTPClient& operator=(const AsyncHTTPClient&) = delete;

  Future<HTTPResponse> fetch(HTTPRequest request);

  // Closes the idle pooled connections.
  void close();

  // For tests and diagnostics.
  size_t active_count() const;
  size_t queued_count() const;
  size_t idle_connection_count() const;
  size_t connections_opened() const;  // fresh connections made so far

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace squall
