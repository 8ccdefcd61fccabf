// HTTP1Connection: one HTTP/1.x message exchange over an IOStream, for a server or a
// client — Tornado's http1connection (HTTP1Connection, HTTP1ServerConnection).
//
// Reading: the head is read through the first blank line (bounded by max_header_size,
// under header_timeout), parsed by the strict parsers of http_parse.h, and the body is
// framed per RFC 9112 §6 (chunked, Content-Length, or — responses only — until close).
// Every read is bounded. On a server, malformed input is answered with the status the
// parser chose ("HTTP/1.1 400 Bad Request", 413, 414, 417, 431, 501, 505) plus
// `Connection: close` (and, with explain_errors, a one-line text/plain body naming the
// problem), logged at info ("Malformed HTTP message from <addr>: <why>"),
// and the connection is closed. Framing choices that differ from Tornado 6.2 follow the
// RFC: both Content-Length and Transfer-Encoding -> 400 (anti-smuggling); a transfer
// coding other than a final chunked -> 501; a head larger than max_header_size -> 431
// (Tornado closes without an answer); a chunked body whose data is not followed by CRLF
// -> 400.
//
// The connection reads the stream through its own small buffer (so that a head that is
// too large can still be answered: IOStream closes on an unsatisfiable read). Bytes read
// past the current message stay in that buffer for the next one, which is why a stream
// carries one HTTP1Connection for its whole life (HTTPServerConnection reuses one per
// socket; a keep-alive client must do the same).
//
// Writing (HTTPConnection): on a server the connection picks the framing as Tornado does —
// chunked for HTTP/1.1 when the response has neither Content-Length nor Transfer-Encoding
// and may have a body; no body for HEAD, 1xx, 204 and 304; `Connection: close` when the
// connection will close; HTTP/1.0 keep-alive only if the request asked for it and the
// response length is known — and adds `Date` and `Server: Squall` when absent.
//
// Output is bounded by a high-water mark (output_high_water): a write's future completes
// once what is queued on the stream is back within it, a finished response lets the next
// (pipelined) request be read only then, and output held back behind a pipelined request
// (corked) never exceeds 64 KiB. A peer that stops reading while output is queued is
// dropped after send_timeout; a head must arrive within header_timeout of its first
// byte, a body may pause at most body_timeout, and a server connection may idle
// idle_connection_timeout between requests. Each timeout logs one line (info, general)
// when it closes a connection.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "squall/future.h"
#include "squall/http_delegate.h"
#include "squall/http_headers.h"
#include "squall/http_parse.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/netutil.h"
#include "squall/task.h"

namespace squall {

// Malformed input from the peer (Tornado's HTTPInputError). status() is what a server
// answers (400, 413, 431, 501, 505).
class HTTPInputError : public std::runtime_error {
 public:
  explicit HTTPInputError(const std::string& what, int status = 400) : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The peer closed the connection after a response's head and before the end of its body
// (a client-side read_response): the stream was cut, the response was not malformed.
// HTTP clients report it as a closed stream rather than a bad response.
class HTTPConnectionClosedError : public HTTPInputError {
 public:
  HTTPConnectionClosedError() : HTTPInputError("Connection closed before the full response was received") {}
};

// Misuse of the output side: writing more or fewer bytes than Content-Length
// (Tornado's HTTPOutputError).
class HTTPOutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Limits and timeouts of a connection. The defaults are nginx's (client_header_timeout,
// client_body_timeout, send_timeout, client_max_body_size for bodies held whole,
// keepalive_timeout in HTTPServerOptions); nullopt / 0 turns a bound off, which with
// max_buffered_body_size = max_body_size and output_high_water = 0 gives Tornado 6.2's
// lenient behaviour.
//
// Memory per server connection, at most: the read buffers (the stream's, under two
// read_chunk_size pieces while a read is pending, plus this connection's: a head up to
// max_header_size, or one chunk_size piece of body) + max_buffered_body_size while a
// handler that takes its body whole receives it (a streaming handler gets chunk_size
// pieces, each awaited) + output_high_water of queued output + the largest single write
// of the handler (a writer that awaits each write keeps that to its piece size).
struct HTTP1ConnectionParameters {
  bool no_keep_alive = false;
  size_t chunk_size = 65536;          // largest piece handed to data_received
  size_t max_header_size = kDefaultMaxHeaderSize;  // a bigger head -> 431
  // From the first byte of a head to its end (nginx's client_header_timeout). When it
  // fires the connection is closed (logged at info, general).
  std::optional<Duration> header_timeout = std::chrono::seconds(60);
  size_t max_body_size = kDefaultMaxBodySize;  // a bigger body -> 413 (decompressed size counts)
  // The limit for a body the receiver takes whole (HTTP1Connection::set_max_body_size;
  // web.h's handlers that do not stream): 413 as soon as Content-Length or the chunked
  // body passes it, without reading the rest, then the connection closes. nginx's
  // client_max_body_size is 1 MiB (the contract app uses that); the library's default
  // leaves room for the in-tree tests that echo a 5 MiB body whole.
  size_t max_buffered_body_size = 8 * 1024 * 1024;
  // The longest wait for more body bytes (nginx's client_body_timeout: between two
  // reads, so a long upload that keeps moving is not cut; Tornado's bounds the whole
  // body). When it fires the connection is closed (logged at info, general).
  std::optional<Duration> body_timeout = std::chrono::seconds(60);
  // Output queued for the peer that makes no progress for this long (a client that
  // stopped reading) closes the connection (nginx's send_timeout; logged at info).
  std::optional<Duration> send_timeout = std::chrono::seconds(60);
  // High-water mark of the output queued on the stream. Above it, write futures (and so
  // RequestHandler::flush) complete only once the output drained back to it, and a server
  // does not read the next (pipelined) request. 0: Tornado's flow control, where a write
  // future completes once everything was sent.
  size_t output_high_water = 256 * 1024;
  bool decompress = false;            // gunzip bodies with Content-Encoding: gzip
  // Bounds of a head, and (head_limits.policy) where the server takes the strict side of
  // RFC 9112's latitude: strict by default; ParsePolicy::lenient() is Tornado 6.2's.
  HeadLimits head_limits;
  size_t max_trailer_fields = kDefaultMaxTrailerFields;  // trailers of a chunked body (read, then dropped)
  // A server's error answer (400, 413, 414, 417, 431, 501, 505) carries a one-line
  // text/plain body naming the problem; off: an empty body (Content-Length: 0).
  bool explain_errors = false;
};

// Who is on the other end of a server connection (Tornado's _HTTPRequestContext).
struct HTTPRequestContext {
  // What every request reads comes first (issue 18): with the server connection's own
  // fields before it, they share its first lines.
  std::string remote_ip;       // the peer's ip, or what X-Real-Ip / X-Forwarded-For say
  std::string protocol;        // "http" / "https", or what X-Scheme / X-Forwarded-Proto say
  SocketAddress address;       // the peer
  std::vector<std::string> trusted_downstream;

  HTTPRequestContext() = default;
  // protocol_name "" is "http"; a peer that is not IPv4/IPv6 has remote_ip "0.0.0.0".
  HTTPRequestContext(const SocketAddress& peer, const std::string& protocol_name,
                     const std::vector<std::string>& trusted = {});
  // Tornado's _apply_xheaders / _unapply_xheaders: unapply restores remote_ip and
  // protocol as they were before the first apply.
  void apply_xheaders(const HTTPHeaders& headers);
  void unapply_xheaders();
  // "1.2.3.4:5678" for the logs ("" when there is no address).
  std::string to_string() const;

 private:
  // The peer's own remote_ip and protocol while X-headers are applied: saved by
  // apply_xheaders, so that a connection without xheaders never copies them (issue 18:
  // a connection per request paid for both copies).
  bool xheaders_applied_ = false;
  std::string orig_remote_ip_;
  std::string orig_protocol_;
};

class HTTP1Connection : public HTTPConnection,
                        public detail::PoolAllocated,  // pooled as IOStream
                        private IOLoop::HeldWrites {
 public:
  // Which end of the exchange this connection is: a client writes requests and reads
  // responses, a server the other way round.
  enum class Side { client, server };

  // context (server side, may be null) must outlive the connection; with xheaders set,
  // the X-* headers of each request are applied to it while that request is handled.
  HTTP1Connection(IOStream& stream, Side side, HTTP1ConnectionParameters params = {},
                  HTTPRequestContext* context = nullptr, bool xheaders = false);
  // The same with parameters shared by many connections (a server's: one copy that every
  // request reads stays in cache, where a copy per connection was a cold line or two
  // per request at 64 connections), made by shared_parameters().
  using SharedParameters = std::shared_ptr<const HTTP1ConnectionParameters>;
  HTTP1Connection(IOStream& stream, Side side, SharedParameters params, HTTPRequestContext* context = nullptr,
                  bool xheaders = false);
  // params with out-of-range values made usable (a chunk size of 0 is 1, a timeout of
  // zero or less is none), in a block of its own.
  static SharedParameters shared_parameters(HTTP1ConnectionParameters params);
  ~HTTP1Connection() override;
  HTTP1Connection(const HTTP1Connection&) = delete;
  HTTP1Connection& operator=(const HTTP1Connection&) = delete;

  // Reads one message into delegate (a response on a client, a request on a server).
  // Returns true when the exchange completed and the connection may be reused, false
  // when it is closed (the delegate then got on_connection_close unless it got finish).
  // On a server it also waits until the response was finished (so pipelined requests
  // are answered in order). With idle_timeout, the wait for the first byte of the head
  // is bounded by it (the server's idle_connection_timeout). On a client, a malformed
  // response (a bad chunk, a bad head) throws HTTPInputError after the delegate got
  // on_connection_close; a truncated one (the peer closed before the body's end) throws
  // its subclass HTTPConnectionClosedError.
  Task<bool> read_message(HTTPMessageDelegate& delegate, std::optional<Duration> idle_timeout = std::nullopt);
  // Server: read_message as an awaitable: co_await it for the same result, or the same
  // exception (thrown by this call itself when the read ended within it). A request whose head is already buffered, without a body, that the
  // delegate answered within its calls (the usual keep-alive GET) is handled right here
  // as a plain call: no coroutine frame and no future, which read_message cost on every
  // request. From the first step that has to wait (a head not yet whole, a body, the
  // delegate's flow control, an answer still to come) or a malformed request to answer,
  // it continues in read_message's coroutine.
  class RequestRead;
  RequestRead read_request(HTTPMessageDelegate& delegate, std::optional<Duration> idle_timeout);
  Task<bool> read_response(HTTPMessageDelegate& delegate) { return read_message(delegate); }
  // Server, between requests: co_await it; true once bytes of the next request are
  // buffered, false when the peer closed or stayed idle past idle_timeout (the
  // connection is closed then). Holds no per-request state while it waits, and is an
  // awaitable rather than a coroutine: this wait happens once per keep-alive request,
  // and a frame of its own cost an allocation and a loop round trip each time.
  class RequestWait;
  RequestWait wait_for_request(std::optional<Duration> idle_timeout);
  // Bytes of a next message are already buffered (a pipelined request): no wait needed.
  bool has_buffered_input() const { return rpos_ < rbuf_.size(); }
  // When the last wait_for_request began waiting for the socket.
  TimePoint waiting_since() const { return waiting_since_; }

  // The body limit of the message being read (Tornado's set_max_body_size): by default
  // params().max_body_size; a message delegate may change it from headers_received (the
  // web layer lowers it to max_buffered_body_size for handlers that take the body whole).
  // A Content-Length above it is refused (413) before any body byte is read.
  void set_max_body_size(uint64_t limit) { max_body_size_ = limit; }
  uint64_t max_body_size() const { return max_body_size_; }

  // HTTPConnection. A write's future completes when the output queued on the stream is
  // at most params().output_high_water (at once, usually): await it before writing more.
  Future<void> write_headers(const ResponseStartLine& start_line, HTTPHeaders& headers,
                             std::string_view chunk = {}) override;
  Future<void> write_headers(const RequestStartLine& start_line, HTTPHeaders& headers,
                             std::string_view chunk = {}) override;
  Future<void> write(std::string_view chunk) override;
  void finish() override;

  // Runs (once) when the stream closes while a message is being handled — what
  // Tornado's RequestHandler.on_connection_close hangs on.
  void set_close_callback(Callback callback) { close_callback_ = std::move(callback); }
  // Closes the stream.
  void close();
  IOStream& stream() { return stream_; }
  const HTTP1ConnectionParameters& params() const { return params_; }

 private:
  struct Gunzip;

  void reset_message_state();
  Future<void> write_head(std::string& head_bytes, std::string_view chunk);
  // What a response head's framing lines say, read from them (write_headers, when the
  // set's owner did not note it); throws std::invalid_argument for an invalid line.
  static FramingLines read_framing_lines(const HTTPHeaders& headers, bool body_follows);
  void format_chunk(std::string& out, std::string_view chunk);
  void finish_request();
  // Marks the response ended and wakes read_message if it waits for that.
  void response_ended();
  void on_stream_close();
  bool can_keep_alive(std::string_view version, const HTTPHeaders& headers, bool is_request,
                      std::string_view method) const;

  // Buffered reads over the stream (throw StreamClosedError, TimeoutError at a deadline
  // — the stream is closed then — or HTTPInputError).
  struct BoundedRead;
  BoundedRead read_some(size_t max_bytes, std::optional<TimePoint> deadline,
                        IOStream::ReadStart start = IOStream::ReadStart::try_socket);
  Task<void> fill(std::optional<TimePoint> deadline, IOStream::ReadStart start = IOStream::ReadStart::try_socket);
  // fill() in two halves, for a coroutine that awaits the read itself (no frame of its own):
  // start_fill makes room and starts the read, end_fill appends what it returned.
  BoundedRead start_fill(std::optional<TimePoint> deadline, IOStream::ReadStart start);
  void end_fill(std::string data);
  // Where the search for the end of a head stands (kept while bytes arrive).
  struct HeadScan {
    size_t start = std::string_view::npos;
    size_t scan = 0;
    size_t cr_scan = 0;
    size_t lf_scan = 0;
  };
  // The length of the head at rbuf_[rpos_] once the buffer holds all of it, else 0;
  // throws HTTPInputError for a bad line end or a head over max_header_size (431/414).
  size_t scan_head(HeadScan& at);
  // scan_head, reading more (bounded by the idle, then the header timeout) until it is whole.
  Task<size_t> read_head(std::optional<Duration> idle_timeout, HeadScan at);

  // How a message's body is delimited (RFC 9112 §6).
  enum class Framing { none, fixed, chunked, until_close };
  // The steps of reading a message, in order; read_message_from starts at any of them.
  // `error`: nothing more to read, a malformed request is to be answered.
  enum class ReadStep { head, head_flow, body, answer, error };
  // What one read_message knows of its message, carried from step to step.
  struct ReadState {
    HeadScan scan;
    Framing framing = Framing::none;
    uint64_t length = 0;
    bool expect_continue = false;
    bool need_delegate_close = false;  // the delegate is owed on_connection_close
    bool head_done = false;
    std::optional<HTTPInputError> input_error;
    bool response_cut_short = false;  // a client's response ended by the peer's close
    std::exception_ptr other_error;
  };
  // read_message's coroutine from `step` on (`flow`: the delegate's, for head_flow).
  Task<bool> read_message_from(HTTPMessageDelegate& delegate, std::optional<Duration> idle_timeout, ReadStep step,
                               ReadState state, FlowControl flow);
  // The steps as plain calls. A head's: parse it (its length is head_length), check its
  // framing, hand it to the delegate; a client's returns false for an interim (1xx)
  // response, to be followed by another head.
  FlowControl on_request_head(HTTPMessageDelegate& delegate, ReadState& state, size_t head_length);
  bool on_response_head(HTTPMessageDelegate& delegate, ReadState& state, size_t head_length, FlowControl& flow);
  // After the delegate took the request head: its lowered body limit, 100 Continue.
  void after_request_head(ReadState& state);
  // The body was read whole: the delegate's finish.
  void end_body(HTTPMessageDelegate& delegate, ReadState& state);
  // In a catch block: notes the exception being handled in `state`.
  void note_read_error(ReadState& state);
  // The end of every read: closes what must be closed, tells the delegate, and returns
  // read_message's result (or rethrows its exception).
  bool end_read(HTTPMessageDelegate& delegate, ReadState& state);
  // timeout: the longest wait for more bytes (params_.body_timeout).
  Task<void> read_fixed_body(HTTPMessageDelegate& delegate, uint64_t length, std::optional<Duration> timeout);
  Task<void> read_chunked_body(HTTPMessageDelegate& delegate, std::optional<Duration> timeout);
  Task<void> read_body_until_close(HTTPMessageDelegate& delegate);
  Task<void> deliver(HTTPMessageDelegate& delegate, std::string data);
  Task<void> write_error_and_close(int status, std::string_view why = {});
  Task<void> linger();
  // Every response byte goes through send(): corked or written (after what is corked) —
  // but a head write_headers builds in corked_ itself.
  // Its future completes once the bytes were sent (or at once when corked).
  Future<void> send(std::string_view bytes);
  // Bytes were appended to corked_: they leave with the batch (flush_corked), at the
  // latest on the next loop iteration.
  Future<void> hold_corked();
  void flush_on_next_iteration();
  void flush_corked();
  void flush_held_writes() override;  // IOLoop::HeldWrites: the end of a handler's run
  // What write()/write_headers() return for bytes just sent: ready while the queued
  // output is within the high-water mark, else a future for when it is back there.
  Future<void> flow_control(Future<void> sent);
  void finish_when(Future<void> written);
  // The send timeout: a watchdog that runs while output is queued and closes the
  // connection when none of it was sent for params_.send_timeout.
  void watch_send();
  void check_send();
  std::string peer() const;

  // Fields are ordered by use (issue 18): what every request reads or writes comes first
  // and together, so that a request touches few cache lines of a connection gone cold
  // among thousands; client-only and rarely used state follows the parameters.
  IOStream& stream_;
  IOLoop* loop_;
  HTTPRequestContext* context_;
  bool is_client_;
  bool xheaders_;

  // Per-message state (reset_message_state).
  bool read_finished_ = false;
  bool write_finished_ = false;
  bool headers_written_ = false;
  bool disconnect_on_finish_ = false;
  bool chunking_output_ = false;
  bool xheaders_applied_ = false;
  // Server: what the response's framing depends on of the request's method and version
  // (kept as flags: copying the two strings cost more than every use of them).
  bool request_is_head_ = false;
  bool request_http11_ = false;
  bool request_keep_alive_header_ = false;  // HTTP/1.0 request said Connection: keep-alive
  // Server: the response was finished (finish_request) or the stream closed; read_message
  // waits for that through finish_future_, made only when it has to wait.
  bool response_ended_ = false;
  bool timed_out_ = false;
  bool corking_ = false;  // see corked_
  bool flush_scheduled_ = false;
  bool flush_by_loop_ = false;  // the flush scheduled is the loop's end-of-handler one
  std::optional<uint64_t> expected_content_remaining_;
  uint64_t body_bytes_ = 0;      // body bytes delivered (decompressed) for max_body_size
  uint64_t max_body_size_;       // of the current message (set_max_body_size)
  std::optional<Future<void>> finish_future_;
  std::optional<Future<void>> pending_write_;
  std::unique_ptr<Gunzip> gunzip_;

  // Our read buffer: live bytes are rbuf_[rpos_, end).
  std::string rbuf_;
  size_t rpos_ = 0;
  std::string out_;  // reused output buffer for heads
  std::vector<HeaderField> head_fields_;  // reused by every request head parsed here
  // Pipelining (server): while the read buffer already holds the next request, response
  // bytes collect here and go out in one write — when a response is written with no
  // request buffered behind it, before waiting for more input, or on the next loop
  // iteration (so a slow handler does not hold earlier responses back).
  std::string corked_;
  TimePoint waiting_since_{};
  // The read watchdog (BoundedRead's deadlines): the pending read's deadline, and one
  // timer that stays armed across reads. A read moves the deadline; the timer is re-armed
  // only when it would fire too late, and when it fires it compares with the deadline then
  // pending — so keep-alive requests cost no timer operation each (nginx's timers are lazy
  // the same way).
  std::optional<TimePoint> read_deadline_;
  std::optional<TimeoutHandle> read_timer_;
  TimePoint read_timer_due_{};
  void arm_read_deadline(TimePoint deadline);
  void on_read_timer();
  Callback close_callback_;
  SharedParameters shared_params_;
  const HTTP1ConnectionParameters& params_;  // *shared_params_

  std::string request_method_;   // client: ours (a response to HEAD has no body)
  // The send watchdog: armed while output is queued; the progress it last saw, and when.
  std::optional<TimeoutHandle> send_timer_;
  uint64_t send_progress_ = 0;
  TimePoint send_progress_time_{};
  // Lets callbacks queued on the loop (which cannot be taken back, unlike timers) notice
  // that the connection is gone; made by liveness() on first use: a connection answering
  // one request at a time needs none.
  std::weak_ptr<HTTP1Connection*> liveness();
  std::shared_ptr<HTTP1Connection*> alive_;
};

// A read of the connection's buffer bounded by a deadline: when it passes the stream is
// closed and the read throws TimeoutError (else what the stream's read throws).
struct HTTP1Connection::BoundedRead {
  HTTP1Connection& conn;
  detail::FutureAwaiter<std::string> read;
  std::optional<TimePoint> deadline;

  bool await_ready() const noexcept { return read.await_ready(); }
  void await_suspend(std::coroutine_handle<> frame);
  std::string await_resume();
};

// What wait_for_request returns (see there). It reads for itself (IOStream::read_some_to,
// started by await_ready, where the object has its final address): the bytes are copied
// straight into the connection's buffer, and the waiting frame is resumed right after the
// stream's event handler — no future, no result string, no loop iteration.
class HTTP1Connection::RequestWait final : private IOStream::ReadWaiter {
 public:
  RequestWait(const RequestWait&) = delete;
  RequestWait& operator=(const RequestWait&) = delete;
  ~RequestWait();
  bool await_ready();
  void await_suspend(std::coroutine_handle<> frame);
  bool await_resume();

 private:
  friend class HTTP1Connection;
  enum class Outcome : uint8_t { pending, arrived, closed };
  RequestWait(HTTP1Connection& conn, Outcome known, std::optional<Duration> idle_timeout,
              std::optional<TimePoint> deadline = std::nullopt,
              IOStream::ReadStart start = IOStream::ReadStart::try_socket)
      : conn_(conn), idle_timeout_(idle_timeout), deadline_(deadline), start_(start), outcome_(known) {}
  void read_done(std::string_view bytes) override;
  void read_failed(const std::exception_ptr& error) override;
  void settle(Outcome outcome);

  HTTP1Connection& conn_;
  std::optional<Duration> idle_timeout_;
  std::optional<TimePoint> deadline_;
  std::coroutine_handle<> frame_;  // set while suspended
  IOStream::ReadStart start_;
  Outcome outcome_;
  bool reading_ = false;  // the stream holds this waiter
};

// What read_request returns (see there): the result, or read_message's task to await.
class HTTP1Connection::RequestRead {
 public:
  bool await_ready() const noexcept { return !rest_ || rest_->await_ready(); }
  void await_suspend(std::coroutine_handle<> frame) { rest_->await_suspend(frame); }
  bool await_resume() { return rest_ ? rest_->await_resume() : keep_going_; }

 private:
  friend class HTTP1Connection;
  explicit RequestRead(bool keep_going) : keep_going_(keep_going) {}
  explicit RequestRead(Task<bool> rest)
      : rest_(detail::FutureAwaiter<bool>{std::move(rest).release_future().release_state()}) {}
  std::optional<detail::FutureAwaiter<bool>> rest_;
  bool keep_going_ = false;
};

// Options of an HTTPServer and of each of its connections.
struct HTTPServerOptions {
  HTTP1ConnectionParameters params;
  bool xheaders = false;
  std::vector<std::string> trusted_downstream;
  // Between requests, and before a fresh connection's first byte (nginx's
  // keepalive_timeout; Tornado's default is 3600 s). Zero: none. Logged at info when it
  // closes a connection.
  Duration idle_connection_timeout = std::chrono::seconds(75);
  std::string protocol;  // "" = "http"
  // Memory of idle connections: a plain (not TLS) connection found waiting for its next
  // request with nothing buffered or queued by two sweeps in a row, this period apart
  // (so idle for one to two periods), is compacted into a small record; its stream, HTTP
  // machinery and buffers are freed until bytes arrive (HTTPServer). Hot keep-alive
  // connections, idle for microseconds between requests, are never compacted. nullopt:
  // never compact.
  std::optional<Duration> idle_compaction_period = std::chrono::milliseconds(100);
};

// One server-side connection: reads requests while keep-alive holds, handing each to a
// message delegate from HTTPServerConnectionDelegate::start_request — Tornado's
// HTTP1ServerConnection. Pipelined requests are answered in order: the next request is
// not read before the previous response was finished.
class HTTPServerConnection : public detail::PoolAllocated {  // pooled as IOStream
 public:
  HTTPServerConnection(std::unique_ptr<IOStream> stream, const SocketAddress& address,
                       const HTTPServerOptions& options);
  // With options.params made shared once for all of a server's connections
  // (HTTP1Connection::shared_parameters; HTTPServer's way).
  HTTPServerConnection(std::unique_ptr<IOStream> stream, const SocketAddress& address,
                       const HTTPServerOptions& options, HTTP1Connection::SharedParameters params);
  ~HTTPServerConnection();
  HTTPServerConnection(const HTTPServerConnection&) = delete;
  HTTPServerConnection& operator=(const HTTPServerConnection&) = delete;

  // The request loop; completes when the connection is closed (delegate.on_close is
  // called then). Each request's message delegate is destroyed as soon as the connection
  // is done with it, and delegate.request_ended follows (also when the loop's frame is
  // destroyed mid-request). Call once (either form).
  Task<void> serve(HTTPServerConnectionDelegate& delegate);
  // The same with a delegate that the request loop owns: it is destroyed when the loop
  // ends (after on_close), or when the loop's frame is destroyed — and this connection
  // with it, if the delegate owns the connection, as HTTPServer's do. A connection then
  // costs one coroutine, where a caller that awaits serve() makes two, and the end of
  // each a loop turn (issue 18).
  Task<void> serve(std::unique_ptr<HTTPServerConnectionDelegate> delegate);
  // Closes the stream; the future completes once the request loop has ended (at once if
  // it is not running).
  Future<void> close();

  // Compaction (HTTPServer): whether the request loop waits for the next request holding
  // nothing — no byte buffered or unread in the socket, none queued for the peer — on a
  // stream that can hand its socket over (IOStream::can_hand_over), and since when.
  bool idle() const;
  TimePoint idle_since() const { return conn_->waiting_since(); }
  // Ends an idle() connection's request loop without closing its socket, which stays
  // registered with the loop for READ under `next`; returns the fd. delegate.on_close is
  // not called: the connection lives on, and a new HTTPServerConnection serves its next
  // request. Throws std::logic_error unless idle().
  int hand_over_socket(IOLoop::FdHandler& next);

  // The peer, after xheaders were applied for the current request.
  const HTTPRequestContext& context() const { return context_; }
  IOStream& stream() { return *stream_; }
  HTTP1Connection& connection() { return *conn_; }

 private:
  // What the request loop uses on every request comes first and together, then the peer
  // (whose remote_ip and protocol each request reads): a few lines of a connection gone
  // cold among thousands (issue 18). conn_ is made in the constructor's body and
  // destroyed first, in the destructor: it refers to stream_ and context_.
  std::unique_ptr<HTTP1Connection> conn_;
  std::unique_ptr<IOStream> stream_;
  std::optional<Duration> idle_timeout_;
  std::optional<Future<void>> loop_ended_;  // made by close() while the loop runs
  bool serving_ = false;     // the request loop runs
  bool waiting_ = false;     // in wait_for_request
  bool handed_over_ = false;  // hand_over_socket ended the request loop
  HTTPRequestContext context_;

  // serve()'s coroutine; `owned` is null or owns `delegate`.
  Task<void> request_loop(HTTPServerConnectionDelegate& delegate, std::unique_ptr<HTTPServerConnectionDelegate> owned);
};

}  // namespace squall
