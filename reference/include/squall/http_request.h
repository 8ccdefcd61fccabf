// HTTPServerRequest: one HTTP request as the application sees it (Tornado's
// `httputil.HTTPServerRequest`).
//
// What it is for: the router matches on it and the handler reads it. It is built from
// the parsed start line, the header fields and what the connection knows about the peer
// (remote address, scheme); the body is added when it has been received, and form
// arguments are parsed from it then. Strings are bytes, as everywhere in Squall.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "squall/http_delegate.h"
#include "squall/http_headers.h"
#include "squall/httputil.h"

namespace squall {

// What the connection knows about its peer (Tornado's HTTP1ConnectionParameters /
// _HTTPRequestContext): the client address and the scheme it used.
struct RequestContext {
  std::string remote_ip = "0.0.0.0";
  std::string protocol = "http";
};

class HTTPServerRequest {
 public:
  using WallClock = std::chrono::system_clock;

  HTTPServerRequest() = default;
  // From a received head. `connection` may be null (tests); it is where the answer goes.
  HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders headers,
                    const RequestContext& context, HTTPConnection* connection = nullptr);
  // The same with the headers moved in once (the per-request path: no temporary set).
  HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders&& headers, std::string_view remote_ip,
                    std::string_view protocol, HTTPConnection* connection);
  HTTPServerRequest(const HTTPServerRequest&) = default;
  HTTPServerRequest(HTTPServerRequest&&) = default;
  HTTPServerRequest& operator=(const HTTPServerRequest&) = default;
  HTTPServerRequest& operator=(HTTPServerRequest&&) = default;
  // Out of line (and among the hot functions: every request is destroyed).
  ~HTTPServerRequest();

  std::string method = "GET";
  std::string uri = "/";  // the request-target as sent; absolute-form becomes origin-form
  std::string version = "HTTP/1.0";
  HTTPHeaders headers;
  std::string body;
  std::string remote_ip;
  std::string protocol = "http";
  std::string host;       // Host header (an absolute-form target's authority), or "127.0.0.1"
  std::string host_name;  // host without the port, lower-cased
  std::string path;       // uri before '?'
  std::string query;      // uri after '?'
  Arguments arguments;    // query_arguments then body_arguments
  Arguments query_arguments;
  Arguments body_arguments;
  Files files;
  HTTPConnection* connection = nullptr;  // null once the connection is gone or done with the request

  // Parsed Cookie header, legal names only (later duplicates win), parsed on first use.
  const std::vector<std::pair<std::string, std::string>>& cookies() const;
  // The value of one cookie, if sent.
  std::optional<std::string> cookie(std::string_view name) const;

  // Parses `body` according to Content-Type into body_arguments/files and appends the
  // fields to `arguments`. A malformed body is logged (warning, general) and ignored,
  // as Tornado does.
  void parse_body();

  // "http://host/uri".
  std::string full_url() const { return protocol + "://" + host + uri; }
  // Seconds since the request started, or until finish_timing() if that was called.
  // RequestHandler::finish() does not call it: Tornado 6.2's request_time() also reads
  // the clock when asked (the access log asks once, right after finish()).
  double request_time() const;
  // Marks the end of the request's processing (request_time stops here).
  void finish_timing() { finish_time_ = std::chrono::steady_clock::now(); }
  bool supports_http_1_1() const { return version == "HTTP/1.1"; }

  // When the request started, by the wall clock (Tornado's _start_time).
  WallClock::time_point start_time() const;

 private:
  // The time of the loop iteration that read the request (IOLoop::cached_time: no clock
  // read per request), or the clock's outside a running loop.
  static std::chrono::steady_clock::time_point loop_time() noexcept;
  // The constructor's and parse_body's rare parts, out of line: inlined, they spread
  // the code every request runs over more pages (detail/hot_path.h).
  [[gnu::noinline]] void take_query();
  [[gnu::noinline]] void parse_body_arguments_now();
  std::chrono::steady_clock::time_point start_ = loop_time();
  std::optional<std::chrono::steady_clock::time_point> finish_time_;
  mutable std::optional<std::vector<std::pair<std::string, std::string>>> cookies_;
};

}  // namespace squall
