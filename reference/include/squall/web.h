// web: Application and RequestHandler (Tornado's `web` module).
//
// What it is for: an Application is the HTTPServerConnectionDelegate an HTTPServer
// hands each request to. It routes the request (routing.h) to a RequestHandler made
// fresh for that request by the rule's factory, and runs the handler's lifecycle as
// Tornado's RequestHandler._execute does: method check (405), prepare(), the body
// (delivered whole, or piece by piece to data_received() for handlers that stream), the
// HTTP method, then finish() unless the handler already did. Errors become responses:
// HTTPError(status) answers that status; any other exception answers a plain 500 with no
// detail and is logged (application, error). Every finished request gets one access log
// line ("200 GET /uri (ip) 1.23ms" at info; 4xx at warning; 5xx at error).
//
// Output is buffered until flush() or finish(): finish() adds Content-Length, an ETag
// (a hash of the body: XXH3; Tornado's is SHA-1) for 200 GET/HEAD answers and turns a
// matching If-None-Match into 304; with `compress_response` the body is gzipped when the client
// accepts it, the type is compressible and the body is at least 1024 bytes. flush()
// sends what is buffered (chunked on HTTP/1.1 when no length is known; no ETag then, as
// Tornado). Its future is the flow control of a large answer: it completes once the
// output queued for the client is within the connection's high-water mark
// (HTTP1ConnectionParameters::output_high_water), so a handler that writes a piece and
// awaits flush() holds at most a piece and the mark, however slow the client.
//
// A request body delivered whole (handlers that do not stream) is bounded by the
// connection's max_buffered_body_size (8 MiB by default): a larger one is answered 413
// without being read. Streaming handlers get max_body_size, in chunk_size pieces, each
// awaited before more is read.
#pragma once

#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "squall/detail/small_pool.h"
#include "squall/future.h"
#include "squall/http_delegate.h"
#include "squall/http_request.h"
#include "squall/routing.h"
#include "squall/task.h"

namespace squall {

// An exception that becomes an HTTP error response (Tornado's web.HTTPError). The
// log_message is logged (warning, general), never sent; `reason` replaces the standard
// reason phrase.
class HTTPError : public std::runtime_error {
 public:
  explicit HTTPError(int status_code = 500, std::string log_message = {}, std::string reason = {});
  int status_code() const { return status_code_; }
  const std::string& log_message() const { return log_message_; }
  const std::string& reason() const { return reason_; }

 private:
  int status_code_;
  std::string log_message_;
  std::string reason_;
};

// A required argument was not sent: 400 (Tornado's MissingArgumentError).
class MissingArgumentError : public HTTPError {
 public:
  explicit MissingArgumentError(std::string arg_name);
  const std::string& arg_name() const { return arg_name_; }

 private:
  std::string arg_name_;
};

// A JSON value, enough to answer with: null, bool, integer, number, string (bytes,
// escaped as Python's json.dumps does with ensure_ascii: non-ASCII UTF-8 becomes \uXXXX,
// invalid UTF-8 bytes become \ufffd), array, object (members in insertion order).
class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : value_(b) {}
  template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
  Json(I i) : value_(static_cast<int64_t>(i)) {}
  Json(double d) : value_(d) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) : value_(std::move(s)) {}
  Json(std::string_view s) : value_(std::string(s)) {}
  Json(Array a) : value_(std::move(a)) {}
  Json(Object o) : value_(std::move(o)) {}

  static Json array(std::initializer_list<Json> items = {}) { return Json(Array(items)); }
  static Json object(std::initializer_list<std::pair<std::string, Json>> members = {}) {
    return Json(Object(members.begin(), members.end()));
  }
  bool is_object() const { return std::holds_alternative<Object>(value_); }
  // For arrays and objects; throws std::logic_error otherwise.
  void push_back(Json item);
  void set(std::string key, Json item);  // replaces an existing member

  // Compact serialisation ("</" is written "<\/" so it can sit inside a <script>).
  std::string dump() const;
  void dump_to(std::string& out) const;

 private:
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> value_{nullptr};
};

// Escapes a byte string as a JSON string literal (with the quotes).
std::string json_quote(std::string_view s);

class Application;
namespace detail {
class HandlerDelegate;
struct HandlerAccess;
struct GzipState;

// A request made in the per-thread pool (small_pool.h) by the connection's delegate and
// handed to its handler whole: routing needs the request before the handler exists, and
// moving a request into the handler member by member cost more than the rest of attach.
struct PooledRequestDelete {
  void operator()(HTTPServerRequest* request) const noexcept;
};
using PooledRequest = std::unique_ptr<HTTPServerRequest, PooledRequestDelete>;
template <class... A>
PooledRequest make_pooled_request(A&&... args) {
  void* block = pool_allocate(sizeof(HTTPServerRequest));
  try {
    return PooledRequest(new (block) HTTPServerRequest(std::forward<A>(args)...));
  } catch (...) {
    pool_deallocate(block, sizeof(HTTPServerRequest));
    throw;
  }
}
}  // namespace detail

// Attributes of a Set-Cookie header (RequestHandler::set_cookie).
struct CookieOptions {
  std::string domain;
  std::optional<std::time_t> expires;  // absolute time
  std::optional<double> expires_days;  // from now; ignored when expires is set
  std::string path = "/";
  std::optional<int64_t> max_age;
  bool secure = false;
  bool httponly = false;
  std::string samesite;  // "Strict", "Lax", "None" or empty
};

// Answers one request. Subclass it and override the HTTP methods you support; the
// others answer 405. Path arguments of the matching rule are in path_args() (unnamed
// groups) or path_kwargs() (named groups).
class RequestHandler {
 public:
  RequestHandler();
  virtual ~RequestHandler();
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;
  // A handler is made and destroyed per request: its memory comes from the per-thread
  // pool (small_pool.h), not the general allocator.
  static void* operator new(std::size_t size) { return detail::pool_allocate(size); }
  static void operator delete(void* block, std::size_t size) noexcept { detail::pool_deallocate(block, size); }

  // ---- what subclasses override ---------------------------------------------------
  // Called before the HTTP method (and, for streaming handlers, before any body).
  virtual Task<void> prepare();
  virtual Task<void> get();
  virtual Task<void> head();
  virtual Task<void> post();
  virtual Task<void> delete_();
  virtual Task<void> patch();
  virtual Task<void> put();
  virtual Task<void> options();
  // After the response was finished (for cleanup and logging).
  virtual void on_finish() {}
  // The client went away before the response was finished.
  virtual void on_connection_close() {}
  // True to receive the body piece by piece through data_received instead of whole in
  // request().body (Tornado's @stream_request_body).
  virtual bool stream_request_body() const { return false; }
  virtual Task<void> data_received(std::string chunk);
  // Adds headers to every response of this handler (also after clear()).
  virtual void set_default_headers() {}
  // Writes the body of an error response; `error` is the exception, if any.
  virtual void write_error(int status_code, std::exception_ptr error);
  // The ETag for the buffered body (nullopt = none): the quoted XXH3-64 of the body in
  // base64url (13 characters; Tornado's is the quoted SHA-1 hex).
  virtual std::optional<std::string> compute_etag() const;
  // Methods this handler answers at all (others -> 405 before prepare()).
  virtual bool supports_method(std::string_view method) const;
  // The methods a 405 answer lists in its Allow header (RFC 9110 §15.5.6). By default the
  // methods of supports_method() that the handler overrides — known for handlers made by
  // handler<H>(); for other factories, every supported method but the refused one.
  virtual std::vector<std::string> allowed_methods() const;

  // ---- context --------------------------------------------------------------------
  Application& application() const { return *application_; }
  HTTPServerRequest& request() { return request_ ? *request_ : unattached_request(); }
  const HTTPServerRequest& request() const { return request_ ? *request_ : unattached_request(); }
  const std::vector<std::string>& path_args() const { return path_args_; }
  const std::vector<std::pair<std::string, std::string>>& path_kwargs() const { return path_kwargs_; }
  // The named path argument (empty if absent).
  std::string path_kwarg(std::string_view name) const;

  // ---- input ----------------------------------------------------------------------
  // The last value of the argument (query or body); throws MissingArgumentError (400).
  // Values have control characters replaced by spaces and surrounding whitespace
  // removed (as Tornado; the plural forms take `strip = false` to keep it).
  std::string get_argument(std::string_view name) const;
  std::string get_argument(std::string_view name, std::string_view default_value) const;
  std::vector<std::string> get_arguments(std::string_view name, bool strip = true) const;
  std::string get_query_argument(std::string_view name) const;
  std::string get_query_argument(std::string_view name, std::string_view default_value) const;
  std::vector<std::string> get_query_arguments(std::string_view name, bool strip = true) const;
  std::string get_body_argument(std::string_view name) const;
  std::string get_body_argument(std::string_view name, std::string_view default_value) const;
  std::vector<std::string> get_body_arguments(std::string_view name, bool strip = true) const;
  std::optional<std::string> get_cookie(std::string_view name) const;
  std::string get_cookie(std::string_view name, std::string_view default_value) const;

  // ---- output ---------------------------------------------------------------------
  // Reason defaults to the standard phrase ("Unknown" for unknown codes).
  void set_status(int status_code, std::string_view reason = {});
  int get_status() const { return status_code_; }
  const std::string& reason() const { return reason_; }
  // Header values with control characters (CR, LF, NUL, ...) and names that are not
  // tokens are refused with std::invalid_argument — they are never sent.
  void set_header(std::string_view name, std::string_view value);
  void set_header(std::string_view name, int64_t value) { set_header(name, std::to_string(value)); }
  void add_header(std::string_view name, std::string_view value);
  void clear_header(std::string_view name);
  const HTTPHeaders& response_headers() const {
    materialize_head();
    return headers_;
  }
  // Resets status, headers and the buffered body.
  void clear();

  // Buffers output. Throws std::logic_error after finish().
  void write(std::string_view chunk);
  void write(const std::string& chunk) { write(std::string_view(chunk)); }
  void write(const char* chunk) { write(std::string_view(chunk)); }
  // Writes the JSON text and sets Content-Type: application/json; charset=UTF-8.
  void write(const Json& value);
  void write_json(std::string_view serialized);
  // Sends the buffered output (the head first, if not sent yet). The future completes
  // when the output queued for the client is back within the high-water mark (at once,
  // usually); it fails with StreamClosedError if the client went away (or was dropped by
  // the send timeout) — catch it around a flush loop, as Tornado's StaticFileHandler does.
  Future<void> flush();
  // Ends the response (writes chunk first). Throws std::logic_error if called twice.
  Future<void> finish(std::string_view chunk = {});
  bool finished() const { return finished_; }
  bool headers_written() const { return headers_written_; }

  // 301 if permanent, else 302, or `status` (300..399); sets Location and finishes.
  void redirect(std::string_view url, bool permanent = false, std::optional<int> status = std::nullopt);
  // Answers an error: clears the output, sets the status, calls write_error, finishes.
  // After the headers were sent it can only log and end the response.
  void send_error(int status_code = 500, std::exception_ptr error = nullptr);

  void set_cookie(std::string_view name, std::string_view value, const CookieOptions& options = {});
  void clear_cookie(std::string_view name, std::string_view path = "/", std::string_view domain = {});

  void set_etag_header();
  // Whether If-None-Match matches the response's ETag (weak comparison; "*" matches).
  bool check_etag_header() const;

  // "GET /uri (1.2.3.4)".
  std::string request_summary() const;

 private:
  friend class Application;
  friend class detail::HandlerDelegate;
  friend struct detail::HandlerAccess;

  void attach(Application& application, detail::PooledRequest request, MatchResult&& params);
  // An empty request, for a handler used before attach() (say, from its constructor).
  HTTPServerRequest& unattached_request() const;
  // The lifecycle: the method check, prepare(), the body (streaming handlers), the HTTP
  // method, finish(). Steps that complete at once run inline (a handler whose methods
  // are plain functions needs no coroutine frame); from the first step that suspends on,
  // the rest runs in a coroutine (execute_suspended). The returned task is done unless
  // a step suspended.
  enum class Stage { check, body, method, finish, done };
  Task<void> execute();
  Task<void> execute_suspended(Task<void> pending, Stage next);
  // Runs the steps from `stage` on while they complete at once (rethrowing a failure):
  // the first step that suspends is returned, `stage` naming the one after it; nullopt
  // once all are done. One call per run of steps, not one per step.
  std::optional<Task<void>> run_until_suspended(Stage& stage);
  void end_execute(std::exception_ptr error);
  Task<void> dispatch_method();
  void handle_request_exception(std::exception_ptr error);
  void log_exception(std::exception_ptr error) const;
  void connection_lost();
  // set_etag_header(); `absent`: the caller has seen that no Etag line is set, so the
  // tag is appended without looking for one (compute_etag() is const: it adds none).
  void store_etag_header(bool absent);
  // flush(); `vary_absent`: the caller (finish) has seen that no Vary line is set;
  // `framing`: what the framing lines say, as finish() knows it (noted on the head for
  // the connection unless the output is compressed, which changes the length).
  Future<void> flush_output(bool vary_absent, const FramingLines* framing = nullptr);
  std::vector<std::string> clean_arguments(const std::vector<std::string>* values, bool strip) const;
  // Copies the pending default lines (head_pending_) into headers_, if they are pending.
  void materialize_head() const;

  Application* application_ = nullptr;
  mutable detail::PooledRequest request_;  // set by attach() (or unattached_request())
  std::vector<std::string> path_args_;
  std::vector<std::pair<std::string, std::string>> path_kwargs_;

  int status_code_ = 200;
  std::string reason_ = "OK";
  // The response's lines. After clear(), the three lines every response starts with
  // (Server, Content-Type, Date) are not copied in yet: while head_pending_ holds,
  // headers_ is empty and stands for those three lines, with pending_content_type_ as
  // the Content-Type. A handler's set_header("Content-Type", ...) then changes only the
  // buffer. Anything else that touches the lines copies them in first (materialize_head),
  // from a per-thread head made for that type (past the first few types, the default
  // type's head, with the type then set in it). That copy replaces the copy clear() made
  // and the rewrite of the Content-Type value that followed it (load/performance.md,
  // session 14). Mutable: response_headers() is const and copies them in too.
  mutable HTTPHeaders headers_;
  mutable bool head_pending_ = false;
  std::uint8_t pending_content_type_size_ = 0;
  static constexpr std::size_t kPendingContentTypeRoom = 46;  // "application/json; charset=UTF-8" fits
  char pending_content_type_[kPendingContentTypeRoom];
  std::string write_buffer_;
  std::vector<std::pair<std::string, std::string>> new_cookies_;  // name -> Set-Cookie value
  bool headers_written_ = false;
  bool finished_ = false;
  bool connection_gone_ = false;
  // Bit i set: the i-th of GET, HEAD, POST, DELETE, PATCH, PUT, OPTIONS is overridden;
  // bit kPrepareBit: prepare() is; bit kComputeEtagBit: compute_etag() is (set by
  // handler<H>(); unknown for other factories).
  std::optional<unsigned> overridden_methods_;
  static constexpr unsigned kPrepareBit = 7;
  static constexpr unsigned kComputeEtagBit = 8;
  std::unique_ptr<detail::GzipState> gzip_;  // compress_response and the client accepts gzip
  bool vary_accept_encoding_ = false;         // compress_response, the client does not

  // Streaming handlers: the connection reads the body only after prepare() (flow
  // control), and the method runs once the whole body was received.
  std::optional<Future<void>> prepared_future_;
  std::optional<Future<void>> body_future_;
};

namespace detail {

template <class P>
constexpr bool is_base_method = std::is_same_v<P, Task<void> (RequestHandler::*)()>;

// Which HTTP methods (and whether prepare() and compute_etag()) H overrides, in RequestHandler::
// overridden_methods_'s bits: a method H does not redeclare is still RequestHandler's,
// so &H::m has its type.
template <class H>
constexpr unsigned overridden_methods() {
  unsigned bits = 0;
  if constexpr (!requires { requires is_base_method<decltype(&H::get)>; }) bits |= 1u << 0;
  if constexpr (!requires { requires is_base_method<decltype(&H::head)>; }) bits |= 1u << 1;
  if constexpr (!requires { requires is_base_method<decltype(&H::post)>; }) bits |= 1u << 2;
  if constexpr (!requires { requires is_base_method<decltype(&H::delete_)>; }) bits |= 1u << 3;
  if constexpr (!requires { requires is_base_method<decltype(&H::patch)>; }) bits |= 1u << 4;
  if constexpr (!requires { requires is_base_method<decltype(&H::put)>; }) bits |= 1u << 5;
  if constexpr (!requires { requires is_base_method<decltype(&H::options)>; }) bits |= 1u << 6;
  if constexpr (!requires { requires is_base_method<decltype(&H::prepare)>; }) bits |= 1u << 7;
  if constexpr (!std::is_same_v<decltype(&H::compute_etag), std::optional<std::string> (RequestHandler::*)() const>) {
    bits |= 1u << 8;
  }
  return bits;
}

struct HandlerAccess {
  static void set_overridden_methods(RequestHandler& h, unsigned bits) { h.overridden_methods_ = bits; }
};

}  // namespace detail

// A factory constructing H from copies of args (Tornado's initialize(**kwargs)).
template <class H, class... A>
HandlerFactory handler(A... args) {
  return [args...]() -> std::unique_ptr<RequestHandler> {
    std::unique_ptr<RequestHandler> h = std::make_unique<H>(args...);
    detail::HandlerAccess::set_overridden_methods(*h, detail::overridden_methods<H>());
    return h;
  };
}

// One route: a path regex, the handler factory and an optional name for reverse_url.
struct URLSpec {
  std::string pattern;
  HandlerFactory factory;
  std::string name = {};
};

struct ApplicationSettings {
  bool compress_response = false;   // gzip output transform
  HandlerFactory default_handler;   // for requests no rule matches (else 404)
  std::string server_header = "Squall";
  // Added to every response before the handler's own (Tornado's clear()).
  std::vector<std::pair<std::string, std::string>> default_headers;
  bool log_requests = true;
};

class Application : public HTTPServerConnectionDelegate {
 public:
  explicit Application(std::vector<URLSpec> handlers = {}, ApplicationSettings settings = {});
  ~Application() override;

  // Appends rules (patterns are compiled now: throws std::invalid_argument).
  void add_handlers(std::vector<URLSpec> handlers);
  void add_rule(Rule rule);
  const ApplicationSettings& settings() const { return settings_; }
  ApplicationSettings& settings() { return settings_; }
  // The URL of the named rule with these (unencoded) arguments; throws std::out_of_range
  // when there is no such name or the pattern cannot be reversed.
  std::string reverse_url(std::string_view name, const std::vector<std::string>& args = {}) const;

  // HTTPServerConnectionDelegate.
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection& server_conn,
                                                     HTTPConnection& request_conn) override;
  // The same without a server connection (tests, other transports).
  std::unique_ptr<HTTPMessageDelegate> start_request(const RequestContext& context,
                                                     HTTPConnection& request_conn);

  // The handler for a request (the default handler or a 404 handler when no rule matches).
  std::unique_ptr<RequestHandler> find_handler(HTTPServerRequest& request, MatchResult& params) const;
  // Writes the access log line for a finished request.
  virtual void log_request(const RequestHandler& handler) const;

 private:
  RuleRouter router_;
  ApplicationSettings settings_;
};

}  // namespace squall
