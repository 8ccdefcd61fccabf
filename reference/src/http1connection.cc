// HTTP1Connection and HTTPServerConnection (see squall/http1connection.h).
#include "squall/http1connection.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <span>

#include <fmt/format.h>

#include "squall/chunked_decoder.h"
#include "squall/detail/hot_path.h"
#include "squall/httputil.h"
#include "squall/log.h"

namespace squall {

namespace {

constexpr size_t kReadPiece = 64 * 1024;
// Response bodies at least this large are written after their head instead of being
// copied into one buffer with it.
constexpr size_t kSeparateBody = 16 * 1024;
// At most this much output is held back (corked) behind a pipelined request; more goes
// out at once, so corking never holds a large body in memory.
constexpr size_t kCorkLimit = 64 * 1024;
// The corking buffer keeps this much room from one batch to the next (a batch of 16 small
// responses fits): it is written from in place, so a pipelining connection allocates
// nothing per batch. A buffer that grew past it is handed to the stream instead.
constexpr size_t kKeptCork = 8 * 1024;
constexpr size_t kFirstCork = 4 * 1024;
static_assert(kKeptCork < kSeparateBody, "flush_corked() must not take back a buffer send() still reads");

// A timeout of zero or less is no timeout.
void drop_nonpositive(std::optional<Duration>& timeout) {
  if (timeout && *timeout <= Duration::zero()) timeout.reset();
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

bool iequals(std::string_view a, std::string_view b) { return header_name_equals(a, b); }

// Whether the Connection field lines hold `token` (RFC 9110 §7.6.1: a comma-separated
// list of case-insensitive options, possibly over several lines).
// The lines are visited in place (get_list's vector was an allocation per request that
// carries the field).
SQUALL_HOT
bool lists_connection_option(std::string_view value, std::string_view token) {
  return !for_each_list_element(value, [&](std::string_view option) { return !iequals(option, token); });
}

bool has_connection_option(const HTTPHeaders& headers, std::string_view token) {
  for (size_t i = headers.find("Connection"); i < headers.size(); i = headers.find("Connection", i + 1)) {
    if (lists_connection_option(headers[i].value, token)) return true;
  }
  return false;
}

// Which of the fields that a request's framing and keep-alive depend on it has, found in
// one pass over its lines: looked up by name, each cost a pass (and a call) of its own,
// five per request, and most requests have none but Host.
struct RequestFields {
  std::optional<std::string_view> host;  // the first Host's value
  size_t hosts = 0;
  std::string_view connection_value;  // the first Connection's value, of `connections`
  size_t connections = 0;
  bool connection = false;
  bool expect = false;
  bool content_length = false;
  bool transfer_encoding = false;
};

RequestFields survey_request_fields(std::span<const HeaderField> fields) {
  RequestFields found;
  for (const HeaderField& field : fields) {
    switch (field.name.size()) {
      case 4:
        if (header_name_is(field.name, "host") && found.hosts++ == 0) found.host = field.value;
        break;
      case 6:
        found.expect = found.expect || header_name_is(field.name, "expect");
        break;
      case 10:
        if (header_name_is(field.name, "connection") && found.connections++ == 0) {
          found.connection = true;
          found.connection_value = field.value;
        }
        break;
      case 14:
        found.content_length = found.content_length || header_name_is(field.name, "content-length");
        break;
      case 17:
        found.transfer_encoding = found.transfer_encoding || header_name_is(field.name, "transfer-encoding");
        break;
      default:
        break;
    }
  }
  return found;
}

// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host, and any Host is a valid
// `uri-host [ ":" port ]`; HTTP/1.0 requests may omit it.
// Strict: an empty Host too (lenient: allowed, as RFC 9112 §3.2 lets a client send one
// for a target URI without authority).
// `host`: the first Host field's value, of `hosts` Host fields, lying in `head`.
void check_host(std::optional<std::string_view> host, size_t hosts, int minor_version, std::string_view head) {
  if (!host) {
    if (minor_version >= 1) throw HTTPInputError("Missing Host header", 400);
    return;
  }
  if (hosts > 1) throw HTTPInputError("Multiple Host headers", 400);
  // An empty value is valid (uri-host may be an empty reg-name; RFC 9110 §7.2 has clients
  // send it for targets without an authority): accepted under either policy.
  if (!is_valid_authority_in(*host, head)) throw HTTPInputError("Invalid Host header", 400);
}

// RFC 9110 §10.1.1: whether the Expect field lines hold only 100-continue (the one
// expectation defined; case-insensitive, empty list elements ignored). nullopt: no Expect.
std::optional<bool> expectation_is_continue(const HTTPHeaders& headers) {
  std::optional<bool> result;
  for (std::string_view value : headers.get_list("Expect")) {
    if (!result) result = true;
    for_each_list_element(value, [&](std::string_view element) {
      if (!element.empty() && !iequals(element, "100-continue")) result = false;
      return true;
    });
  }
  return result;
}

// Line ends in the buffered part of a head, checked as bytes arrive so that no head
// waits for an end it cannot have: a CR must be followed by LF (always), and with
// `allow_lf` false every LF must follow a CR. Checks b[from, to) and advances `from`
// (a CR as the last buffered byte is checked again once its successor is here).
// Returns the reason of the first bad line end, or nullptr.
const char* bad_line_end(std::string_view b, size_t& cr_from, size_t& lf_from, size_t to, bool allow_lf) {
  while (cr_from < to) {
    const void* hit = std::memchr(b.data() + cr_from, '\r', to - cr_from);
    if (!hit) {
      cr_from = to;
      break;
    }
    size_t i = static_cast<const char*>(hit) - b.data();
    if (i + 1 >= b.size()) {
      cr_from = i;
      break;
    }
    if (b[i + 1] != '\n') return "bare CR in head";
    cr_from = i + 1;
  }
  if (allow_lf) return nullptr;
  while (lf_from < to) {
    const void* hit = std::memchr(b.data() + lf_from, '\n', to - lf_from);
    if (!hit) {
      lf_from = to;
      break;
    }
    size_t i = static_cast<const char*>(hit) - b.data();
    if (i == 0 || b[i - 1] != '\r') return "bare LF line terminator";
    lf_from = i + 1;
  }
  return nullptr;
}

// Why a head that outgrew max_header_size is refused: 414 when its request line is what
// is too long (no line end within max_header_size, or a line longer than max_start_line),
// else 431.
int oversized_head_status(std::string_view buffered, size_t start, size_t max_header_size, size_t max_start_line) {
  if (start == std::string_view::npos) start = 0;
  std::string_view rest = buffered.substr(std::min(start, buffered.size()), max_header_size);
  size_t line_end = rest.find('\n');
  if (line_end == std::string_view::npos) return 414;
  if (line_end > 0 && rest[line_end - 1] == '\r') --line_end;
  return line_end > max_start_line ? 414 : 431;
}

void append_header_line(std::string& out, std::string_view name, std::string_view value) {
  if (!is_token(name)) throw std::invalid_argument(fmt::format("Invalid header name: {:?}", name));
  if (!is_valid_field_value(value)) {
    throw std::invalid_argument(fmt::format("Invalid character in header value: {:?}", name));
  }
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

// ---- HTTPRequestContext ----------------------------------------------------------------

namespace {

std::string peer_ip(const SocketAddress& peer) {
  const int family = peer.family();
  return family == AF_INET || family == AF_INET6 ? peer.ip() : std::string("0.0.0.0");
}

}  // namespace

SQUALL_HOT
HTTPRequestContext::HTTPRequestContext(const SocketAddress& peer, const std::string& protocol_name,
                                       const std::vector<std::string>& trusted)
    : remote_ip(peer_ip(peer)),
      protocol(protocol_name.empty() ? std::string("http") : protocol_name),
      address(peer),
      trusted_downstream(trusted) {}

void HTTPRequestContext::apply_xheaders(const HTTPHeaders& headers) {
  if (!xheaders_applied_) {
    orig_remote_ip_ = remote_ip;
    orig_protocol_ = protocol;
    xheaders_applied_ = true;
  }
  // The last X-Forwarded-For entry that is not a trusted downstream proxy.
  std::string ip = headers.get("X-Forwarded-For", remote_ip);
  std::string candidate;
  std::string_view rest = ip;
  while (true) {
    size_t comma = rest.rfind(',');
    std::string_view part = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    candidate.assign(trim_ows(part));
    bool trusted = std::find(trusted_downstream.begin(), trusted_downstream.end(), candidate) !=
                   trusted_downstream.end();
    if (!trusted || comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
  }
  std::string real = headers.get("X-Real-Ip", candidate);
  if (is_valid_ip(real)) remote_ip = real;

  std::optional<std::string> proto = headers.get("X-Scheme");
  if (!proto) proto = headers.get("X-Forwarded-Proto");
  if (proto) {
    std::string_view p = *proto;
    size_t comma = p.rfind(',');
    if (comma != std::string_view::npos) p = p.substr(comma + 1);
    p = trim_ows(p);
    if (p == "http" || p == "https") protocol = std::string(p);
  }
}

void HTTPRequestContext::unapply_xheaders() {
  if (!xheaders_applied_) return;
  remote_ip = orig_remote_ip_;
  protocol = orig_protocol_;
  xheaders_applied_ = false;
}

std::string HTTPRequestContext::to_string() const { return address.empty() ? remote_ip : address.to_string(); }

// ---- gzip ------------------------------------------------------------------------------

struct HTTP1Connection::Gunzip {
  z_stream zs{};
  bool ended = false;
  Gunzip() {
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  }
  ~Gunzip() { inflateEnd(&zs); }
};

// ---- HTTP1Connection -------------------------------------------------------------------

namespace {

// The buffers a connection keeps for its whole life, handed on from the connections gone
// to the ones made next on this thread (a connection per request made and freed each:
// two of its five malloc/free pairs). The read buffer comes from and goes back among the
// stream's read results (IOStream::take_recycled, recycle). Up to 256 of each, as the stream's
// read buffers: heads of up to 2 KiB (512 KiB at most), field lists of up to 64 fields
// (256 × 2 KiB).
struct HeadBuffer;
using SpareHeadBuffer = detail::SpareString<HeadBuffer, 2048, 256>;
struct HeadFields;
using SpareHeadFields = detail::SpareBuffers<std::vector<HeaderField>, HeadFields, 64, 256>;

}  // namespace

HTTP1Connection::SharedParameters HTTP1Connection::shared_parameters(HTTP1ConnectionParameters params) {
  if (params.chunk_size == 0) params.chunk_size = 1;
  drop_nonpositive(params.header_timeout);
  drop_nonpositive(params.body_timeout);
  drop_nonpositive(params.send_timeout);
  return std::allocate_shared<const HTTP1ConnectionParameters>(detail::PoolAllocator<HTTP1ConnectionParameters>{},
                                                               std::move(params));
}

HTTP1Connection::HTTP1Connection(IOStream& stream, Side side, HTTP1ConnectionParameters params,
                                 HTTPRequestContext* context, bool xheaders)
    : HTTP1Connection(stream, side, shared_parameters(std::move(params)), context, xheaders) {}

SQUALL_HOT
HTTP1Connection::HTTP1Connection(IOStream& stream, Side side, SharedParameters params, HTTPRequestContext* context,
                                 bool xheaders)
    : stream_(stream),
      loop_(&stream.io_loop()),
      context_(context),
      is_client_(side == Side::client),
      xheaders_(xheaders),
      max_body_size_(params->max_body_size),
      rbuf_(IOStream::take_recycled()),
      out_(SpareHeadBuffer::take()),
      head_fields_(SpareHeadFields::take()),
      shared_params_(std::move(params)),
      params_(*shared_params_) {}

SQUALL_HOT
HTTP1Connection::~HTTP1Connection() {
  if (alive_) *alive_ = nullptr;
  if (flush_by_loop_) loop_->cancel_flush(*this);
  // The timers' callbacks hold `this`: removed here, they never run after it is gone.
  if (send_timer_) loop_->remove_timeout(*send_timer_);
  if (read_timer_) loop_->remove_timeout(*read_timer_);
  IOStream::recycle(std::move(rbuf_));
  SpareHeadBuffer::give(std::move(out_));
  SpareHeadFields::give(std::move(head_fields_));
}

std::weak_ptr<HTTP1Connection*> HTTP1Connection::liveness() {
  if (!alive_) alive_ = std::allocate_shared<HTTP1Connection*>(detail::PoolAllocator<HTTP1Connection*>{}, this);
  return alive_;
}

std::string HTTP1Connection::peer() const { return context_ ? context_->to_string() : std::string("the peer"); }

SQUALL_HOT
void HTTP1Connection::reset_message_state() {
  read_finished_ = false;
  write_finished_ = false;
  headers_written_ = false;
  disconnect_on_finish_ = false;
  chunking_output_ = false;
  expected_content_remaining_.reset();
  if (!is_client_) {
    request_is_head_ = false;
    request_http11_ = false;
  }
  request_keep_alive_header_ = false;
  body_bytes_ = 0;
  max_body_size_ = params_.max_body_size;
  finish_future_.reset();
  response_ended_ = false;
  pending_write_.reset();
  gunzip_.reset();
  timed_out_ = false;
}

bool HTTP1Connection::can_keep_alive(std::string_view version, const HTTPHeaders& headers, bool is_request,
                                     std::string_view method) const {
  if (params_.no_keep_alive) return false;
  if (has_connection_option(headers, "close")) return false;
  if (version == "HTTP/1.1") return true;
  std::optional<std::string_view> te = headers.get_first("Transfer-Encoding");
  if (headers.contains("Content-Length") || (te && iequals(*te, "chunked")) ||
      (is_request && (method == "HEAD" || method == "GET"))) {
    return has_connection_option(headers, "keep-alive");
  }
  return false;
}

// ---- reading -----------------------------------------------------------------------------

// One read from the stream, bounded by a deadline and awaited in the caller's frame (a
// coroutine of its own cost a frame and a future per read, and an idle connection held
// them while it waited). At the deadline the stream is closed, so the read fails; the
// failure is then reported as a TimeoutError.
void HTTP1Connection::BoundedRead::await_suspend(std::coroutine_handle<> frame) {
  if (deadline) conn.arm_read_deadline(*deadline);
  read.await_suspend(frame);
}

std::string HTTP1Connection::BoundedRead::await_resume() {
  conn.read_deadline_.reset();  // the timer stays armed for the next read (see the header)
  try {
    return read.await_resume();
  } catch (const StreamClosedError&) {
    if (deadline && conn.timed_out_) throw TimeoutError("Timeout reading from stream");
    throw;
  }
}

SQUALL_HOT
void HTTP1Connection::arm_read_deadline(TimePoint deadline) {
  read_deadline_ = deadline;
  if (read_timer_ && read_timer_due_ <= deadline) return;  // fires first, then re-arms
  if (read_timer_) loop_->remove_timeout(*read_timer_);
  read_timer_due_ = deadline;
  read_timer_ = loop_->call_at(deadline, [this] { on_read_timer(); });  // removed by ~HTTP1Connection
}

void HTTP1Connection::on_read_timer() {
  read_timer_.reset();
  if (!read_deadline_) return;  // no read pending: the next one arms the timer again
  if (loop_->time() < *read_deadline_) {
    arm_read_deadline(*read_deadline_);  // armed for an earlier read: wait on for this one
    return;
  }
  timed_out_ = true;
  stream_.close();
}

HTTP1Connection::BoundedRead HTTP1Connection::read_some(size_t max_bytes, std::optional<TimePoint> deadline,
                                                         IOStream::ReadStart start) {
  // Every read goes out after the answers held back (as wait_for_request's): one that
  // finds the peer's end of input closes the stream, and held bytes would be lost with it.
  flush_corked();
  Future<std::string> read = stream_.read_bytes(max_bytes, true, start);
  // A server's request is handled as soon as its bytes are read, before the next
  // connection of the poll batch is (see IOLoop::add_callback_after_handler).
  if (!is_client_) read.deliver_after_handler();
  return BoundedRead{*this, detail::FutureAwaiter<std::string>{std::move(read).release_state()}, deadline};
}

HTTP1Connection::BoundedRead HTTP1Connection::start_fill(std::optional<TimePoint> deadline,
                                                          IOStream::ReadStart start) {
  if (rpos_ == rbuf_.size()) {
    rbuf_.clear();
    rpos_ = 0;
  } else if (rpos_ > 0) {
    rbuf_.erase(0, rpos_);
    rpos_ = 0;
  }
  return read_some(kReadPiece, deadline, start);
}

void HTTP1Connection::end_fill(std::string data) {
  if (rbuf_.empty() && data.capacity() >= rbuf_.capacity()) {
    rbuf_.swap(data);
  } else {
    rbuf_.append(data);
  }
  IOStream::recycle(std::move(data));  // the next read's result reuses its memory
}

Task<void> HTTP1Connection::fill(std::optional<TimePoint> deadline, IOStream::ReadStart start) {
  end_fill(co_await start_fill(deadline, start));
}

// Finds the end of the head (just past "\r?\n\r?\n") in the buffered bytes; returns the
// head length, or 0 with `scan` advanced so the next search resumes there.
static size_t find_head_end(std::string_view b, size_t& start, size_t& scan) {
  size_t n = b.size();
  if (start == std::string_view::npos) {
    size_t i = 0;
    while (i < n && (b[i] == '\r' || b[i] == '\n')) ++i;  // empty lines before the start line
    if (i == n) return 0;
    start = i;
    scan = i;
  }
  while (scan < n) {
    const void* hit = std::memchr(b.data() + scan, '\n', n - scan);
    if (!hit) {
      scan = n;
      return 0;
    }
    size_t i = static_cast<const char*>(hit) - b.data();
    if (i + 1 >= n) {
      scan = i;
      return 0;
    }
    if (b[i + 1] == '\n') return i + 2;
    if (b[i + 1] == '\r') {
      if (i + 2 >= n) {
        scan = i;
        return 0;
      }
      if (b[i + 2] == '\n') return i + 3;
    }
    scan = i + 1;
  }
  return 0;
}

SQUALL_HOT
size_t HTTP1Connection::scan_head(HeadScan& at) {
  // The server judges line ends as they arrive; a client reads heads as Tornado does.
  const bool check_line_ends = !is_client_;
  std::string_view buffered(rbuf_.data() + rpos_, rbuf_.size() - rpos_);
  // The usual head, whole in the buffer with CRLF line ends, is found and its line ends
  // proved in one pass. Tried on the first look only (`start` is set by the search below
  // once the start line has begun), so a head arriving piece by piece is not rescanned.
  if (at.start == std::string_view::npos) {
    if (size_t end = crlf_head_end(buffered); end != 0 && end <= params_.max_header_size) {
      at = HeadScan{0, end, end, end};
      return end;
    }
  }
  size_t end = find_head_end(buffered, at.start, at.scan);
  if (check_line_ends) {
    const size_t upto = std::min(end != 0 ? end : buffered.size(), params_.max_header_size);
    if (const char* why = bad_line_end(buffered, at.cr_scan, at.lf_scan, upto, params_.head_limits.policy.allow_bare_lf)) {
      throw HTTPInputError(why, 400);
    }
  }
  bool too_large = end != 0 ? end > params_.max_header_size : buffered.size() >= params_.max_header_size;
  if (too_large) {
    int status = is_client_ ? 431
                            : oversized_head_status(buffered, at.start, params_.max_header_size,
                                                    params_.head_limits.max_start_line);
    throw HTTPInputError(status == 414 ? "Request line too long" : "Header too large", status);
  }
  return end;
}

Task<size_t> HTTP1Connection::read_head(std::optional<Duration> idle_timeout, HeadScan at) {
  std::optional<TimePoint> head_deadline;
  std::optional<Duration> head_timeout = params_.header_timeout ? params_.header_timeout : idle_timeout;
  IOLoop& loop = stream_.io_loop();
  for (;;) {
    if (size_t end = scan_head(at)) co_return end;
    flush_corked();  // about to wait for the peer: what is corked must not wait with us
    std::optional<TimePoint> deadline;
    const size_t received = rbuf_.size() - rpos_;
    if (received == 0) {
      if (idle_timeout) deadline = loop.time() + *idle_timeout;
    } else {
      if (!head_deadline && head_timeout) head_deadline = loop.time() + *head_timeout;
      deadline = head_deadline;
    }
    try {
      co_await fill(deadline);
    } catch (const TimeoutError&) {
      if (!is_client_) {
        if (received == 0) {
          log(LogLevel::info, LogCategory::general, "Idle timeout ({:g} s): closing the connection from {}",
              seconds(*idle_timeout), peer());
        } else {
          log(LogLevel::info, LogCategory::general,
              "Header timeout ({:g} s): closing the connection from {} ({} bytes of an unfinished head)",
              seconds(*head_timeout), peer(), received);
        }
      }
      throw;
    }
  }
}

SQUALL_HOT
HTTP1Connection::RequestWait HTTP1Connection::wait_for_request(std::optional<Duration> idle_timeout) {
  if (rpos_ < rbuf_.size()) return RequestWait(*this, RequestWait::Outcome::arrived, idle_timeout);
  // About to wait for the peer: what is corked must not wait with us. Unless the loop
  // sends it once this handler returns to it and the wait reads nothing before then: the
  // connection's set-up for the wait then runs before the send too. A read now could find
  // the peer's end of input and close the stream, held bytes with it.
  if (!flush_by_loop_ || stream_.reads_socket_at_once(IOStream::ReadStart::wait_readable)) flush_corked();
  rbuf_.clear();  // all of it was read (or there was nothing): it keeps its capacity
  rpos_ = 0;
  // One clock read for both the deadline and the idle start (HTTPServer's compaction).
  waiting_since_ = stream_.io_loop().cached_time();
  std::optional<TimePoint> deadline;
  if (idle_timeout) deadline = waiting_since_ + *idle_timeout;
  // After an answer the client is usually still reading it, so a read now would find
  // nothing: wait for the loop to report bytes (one read per request, as nginx). So for
  // a new connection's first request: accept(2) returns once the handshake is done, and
  // the client sends its request after that (connection per request, loopback: two reads
  // per request when it was read at once, of which the first found nothing).
  return RequestWait(*this, RequestWait::Outcome::pending, idle_timeout, deadline,
                     IOStream::ReadStart::wait_readable);
}

HTTP1Connection::RequestWait::~RequestWait() {
  if (reading_) conn_.stream_.cancel_read(*this);  // the frame went away while it waited
}

SQUALL_HOT
bool HTTP1Connection::RequestWait::await_ready() {
  if (outcome_ != Outcome::pending) return true;
  reading_ = true;
  try {
    conn_.stream_.read_some_to(*this, kReadPiece, start_);
  } catch (const StreamClosedError&) {
    settle(Outcome::closed);
  }
  return outcome_ != Outcome::pending;
}

void HTTP1Connection::RequestWait::await_suspend(std::coroutine_handle<> frame) {
  frame_ = frame;
  if (deadline_) conn_.arm_read_deadline(*deadline_);
}

SQUALL_HOT
void HTTP1Connection::RequestWait::read_done(std::string_view bytes) {
  conn_.rbuf_.append(bytes);
  settle(Outcome::arrived);
}

void HTTP1Connection::RequestWait::read_failed(const std::exception_ptr&) { settle(Outcome::closed); }

// Called within the stream's handler (or read_some_to): only notes the outcome and has
// the frame resumed once the handler has returned.
SQUALL_HOT
void HTTP1Connection::RequestWait::settle(Outcome outcome) {
  reading_ = false;
  outcome_ = outcome;
  if (frame_) conn_.loop_->add_callback_after_handler([frame = frame_] { frame.resume(); });
}

SQUALL_HOT
bool HTTP1Connection::RequestWait::await_resume() {
  conn_.read_deadline_.reset();  // the timer stays armed for the next read (see the header)
  if (outcome_ == Outcome::arrived) return true;
  if (conn_.timed_out_ && idle_timeout_) {
    log(LogLevel::info, LogCategory::general, "Idle timeout ({:g} s): closing the connection from {}",
        seconds(*idle_timeout_), conn_.peer());
  }
  conn_.close();  // the peer left, or stayed idle too long: close quietly
  return false;
}

Task<void> HTTP1Connection::deliver(HTTPMessageDelegate& delegate, std::string data) {
  if (!gunzip_) {
    body_bytes_ += data.size();
    if (body_bytes_ > max_body_size_) throw HTTPInputError("Body too large", 413);
    FlowControl flow = delegate.data_received(std::move(data));
    if (flow) co_await *flow;
    co_return;
  }
  Gunzip& gz = *gunzip_;
  if (gz.ended) co_return;  // bytes after the end of the gzip member are ignored
  gz.zs.next_in = reinterpret_cast<Bytef*>(data.data());
  gz.zs.avail_in = static_cast<uInt>(data.size());
  while (gz.zs.avail_in > 0 && !gz.ended) {
    std::string out(params_.chunk_size, '\0');
    gz.zs.next_out = reinterpret_cast<Bytef*>(out.data());
    gz.zs.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&gz.zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      gz.ended = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw HTTPInputError("Invalid gzip body", 400);
    }
    size_t produced = out.size() - gz.zs.avail_out;
    if (produced == 0 && rc == Z_BUF_ERROR) break;
    out.resize(produced);
    body_bytes_ += produced;
    if (body_bytes_ > max_body_size_) throw HTTPInputError("Body too large", 413);
    if (produced > 0) {
      // data stays alive in this frame while the delegate runs.
      FlowControl flow = delegate.data_received(std::move(out));
      if (flow) co_await *flow;
    }
  }
}

Task<void> HTTP1Connection::read_fixed_body(HTTPMessageDelegate& delegate, uint64_t length,
                                            std::optional<Duration> timeout) {
  uint64_t remaining = length;
  while (remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, params_.chunk_size));
    size_t avail = rbuf_.size() - rpos_;
    std::string piece;
    if (avail > 0) {
      size_t take = std::min(avail, want);
      piece.assign(rbuf_, rpos_, take);
      rpos_ += take;
    } else {
      std::optional<TimePoint> deadline;
      if (timeout) deadline = loop_->time() + *timeout;
      piece = co_await read_some(want, deadline);
    }
    remaining -= piece.size();
    co_await deliver(delegate, std::move(piece));
  }
}

Task<void> HTTP1Connection::read_chunked_body(HTTPMessageDelegate& delegate, std::optional<Duration> timeout) {
  ChunkedDecoderLimits limits;
  limits.max_body = max_body_size_;
  limits.max_trailer_bytes = params_.max_header_size;
  limits.max_trailer_fields = params_.max_trailer_fields;
  limits.trailer_limits = params_.head_limits;
  ChunkedDecoder decoder(limits);
  for (;;) {
    std::string_view buffered(rbuf_.data() + rpos_, rbuf_.size() - rpos_);
    ParseResult<ChunkedStep> step = decoder.step(buffered, params_.chunk_size);
    step.throw_if_error<HTTPInputError>();
    rpos_ += step->consumed;
    switch (step->kind) {
      case ChunkedStep::Kind::done:
        co_return;
      case ChunkedStep::Kind::need_more: {
        std::optional<TimePoint> deadline;
        if (timeout) deadline = loop_->time() + *timeout;
        co_await fill(deadline);
        break;
      }
      case ChunkedStep::Kind::data:
        // Copied before the next fill() moves the buffer.
        co_await deliver(delegate, std::string(step->data));
        break;
    }
  }
}

Task<void> HTTP1Connection::read_body_until_close(HTTPMessageDelegate& delegate) {
  if (rpos_ < rbuf_.size()) {
    std::string piece(rbuf_, rpos_);
    rpos_ = rbuf_.size();
    co_await deliver(delegate, std::move(piece));
  }
  for (;;) {
    std::string piece;
    try {
      piece = co_await read_some(params_.chunk_size, std::nullopt);
    } catch (const StreamClosedError&) {
      break;
    }
    co_await deliver(delegate, std::move(piece));
  }
}

Task<void> HTTP1Connection::write_error_and_close(int status, std::string_view why) {
  // The body names the problem (one short line, text/plain); none for HEAD.
  const bool body = params_.explain_errors && !why.empty() && !request_is_head_;
  std::string message =
      body ? fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\nConnection: close\r\nContent-Type: text/plain; "
                         "charset=UTF-8\r\nContent-Length: {}\r\n\r\n{}\n",
                         status, reason_phrase(status), current_http_date(), why.size() + 1, why)
           : fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status,
                         reason_phrase(status), current_http_date());
  try {
    if (!stream_.closed()) {
      corking_ = false;  // after the responses already corked, in order
      stream_.set_nodelay(true);
      Future<void> written = send(message);
      co_await written;
      co_await linger();
    }
  } catch (const std::exception&) {
  }
  close();
}

// RFC 9112 §9.6: closing while the client's bytes are still unread makes the kernel send
// a reset, which can destroy the answer before the client has read it (seen over TLS,
// where the answer is one small record). So: half-close, then read and drop what the
// client still sends until it closes — bounded in time and bytes, as nginx's lingering
// close.
Task<void> HTTP1Connection::linger() {
  constexpr Duration kLingerTime = std::chrono::seconds(2);
  constexpr size_t kLingerBytes = 1 << 20;
  stream_.shutdown_write();
  rpos_ = rbuf_.size();
  std::optional<TimePoint> deadline = stream_.io_loop().time() + kLingerTime;
  size_t dropped = 0;
  try {
    while (dropped < kLingerBytes) {
      std::string piece = co_await read_some(kReadPiece, deadline);
      dropped += piece.size();
    }
  } catch (const std::exception&) {
    // end of stream, reset, or the deadline: done either way
  }
}

bool HTTP1Connection::on_response_head(HTTPMessageDelegate& delegate, ReadState& st, size_t head_length,
                                       FlowControl& flow) {
  std::string_view head(rbuf_.data() + rpos_, head_length);
  ParseResult<ResponseHead> parsed = parse_response_head(head, params_.head_limits);
  parsed.throw_if_error<HTTPInputError>();
  ResponseStartLine line{std::string(parsed->start_line.version), parsed->start_line.code,
                         std::string(parsed->start_line.reason)};
  HTTPHeaders headers = std::move(parsed->headers);
  rpos_ += head_length;
  int code = line.code;
  if (code >= 100 && code < 200 && code != 101) {
    if (headers.contains("Content-Length") || headers.contains("Transfer-Encoding")) {
      throw HTTPInputError(fmt::format("Response code {} cannot have body", code));
    }
    return false;  // interim response: read the final one
  }
  st.head_done = true;
  disconnect_on_finish_ = !can_keep_alive(line.version, headers, false, {});
  bool skip_body = request_method_ == "HEAD" || code == 304 || code == 101;
  std::optional<std::string_view> te_value = headers.get_first("Transfer-Encoding");
  std::optional<std::string> cl_value = headers.get("Content-Length");
  if (!skip_body) {
    if (te_value && cl_value) {
      throw HTTPInputError("Response with both Transfer-Encoding and Content-Length");
    }
    if (cl_value) {
      ParseResult<uint64_t> cl = parse_content_length(*cl_value, ParsePolicy::lenient());
      cl.throw_if_error<HTTPInputError>();
      st.length = *cl;
      if (st.length > params_.max_body_size) throw HTTPInputError("Content-Length too long", 413);
      st.framing = Framing::fixed;
    } else if (te_value) {
      ParseResult<TransferEncoding> te =
          parse_transfer_encoding(*headers.get("Transfer-Encoding"), ParsePolicy::lenient());
      te.throw_if_error<HTTPInputError>();
      st.framing = te->chunked ? Framing::chunked : Framing::until_close;
    } else {
      st.framing = Framing::until_close;
    }
    if (code == 204) {
      if (st.framing == Framing::chunked || (st.framing == Framing::fixed && st.length != 0)) {
        throw HTTPInputError("Response with code 204 should not have body");
      }
      st.framing = Framing::none;
    }
    if (st.framing == Framing::until_close) disconnect_on_finish_ = true;
  }
  if (params_.decompress && st.framing != Framing::none) {
    std::optional<std::string> ce = headers.get("Content-Encoding");
    if (ce && iequals(*ce, "gzip")) {
      gunzip_ = std::make_unique<Gunzip>();
      headers.add("X-Consumed-Content-Encoding", *ce);
      headers.remove("Content-Encoding");
    }
  }
  st.need_delegate_close = true;
  flow = delegate.headers_received(line, headers);
  return true;
}

SQUALL_HOT
FlowControl HTTP1Connection::on_request_head(HTTPMessageDelegate& delegate, ReadState& st, size_t head_length) {
  std::string_view head(rbuf_.data() + rpos_, head_length);
  ParseResult<RequestLine> parsed = parse_request_head(head, head_fields_, params_.head_limits);
  parsed.throw_if_error<HTTPInputError>();
  RequestStartLine line{std::string(parsed->method), std::string(parsed->target), std::string(parsed->version)};
  HTTPHeaders headers = HTTPHeaders::from_fields(head_fields_);
  rpos_ += head_length;  // its bytes stay buffered: views into them are read below, before the delegate's call
  st.head_done = true;
  const ParsePolicy& policy = params_.head_limits.policy;
  // Surveyed as parsed (views into the head), so that the Host check may read around its value.
  const RequestFields fields = survey_request_fields(head_fields_);
  check_host(fields.host, fields.hosts, parsed->minor, head);
  // Compared as views: a size check and one 8-byte compare, not strlen and memcmp calls.
  const bool http11 = std::string_view(line.version) == "HTTP/1.1";
  request_is_head_ = std::string_view(line.method) == "HEAD";
  request_http11_ = http11;
  // Without a Connection field an HTTP/1.1 request keeps the connection unless the
  // server never does (can_keep_alive's answer, without its lookups).
  // One Connection line on an HTTP/1.1 request (a client closing after it): its value is
  // read where the survey found it, not looked up again.
  if (http11 && fields.connections == 1) {
    disconnect_on_finish_ = params_.no_keep_alive || lists_connection_option(fields.connection_value, "close");
  } else {
    disconnect_on_finish_ = (fields.connection || !http11) ? !can_keep_alive(line.version, headers, true, line.method)
                                                           : params_.no_keep_alive;
  }
  if (!http11) request_keep_alive_header_ = fields.connection && has_connection_option(headers, "keep-alive");
  // Framing (RFC 9112 §6.3), checked before the application sees the request.
  std::optional<std::string> te_value;
  if (fields.transfer_encoding) te_value = headers.get("Transfer-Encoding");
  std::optional<std::string> cl_value;
  if (fields.content_length) cl_value = headers.get("Content-Length");
  if (te_value) {
    if (cl_value) throw HTTPInputError("Request with both Transfer-Encoding and Content-Length");
    ParseResult<TransferEncoding> te = parse_transfer_encoding(*te_value, policy);
    te.throw_if_error<HTTPInputError>();
    if (te->other_codings > 0) throw HTTPInputError("Unsupported transfer coding", 501);
    st.framing = Framing::chunked;
    if (!http11) disconnect_on_finish_ = true;
  } else if (cl_value) {
    ParseResult<uint64_t> cl = parse_content_length(*cl_value, policy);
    cl.throw_if_error<HTTPInputError>();
    st.length = *cl;
    if (st.length > params_.max_body_size) throw HTTPInputError("Content-Length too long", 413);
    st.framing = st.length > 0 ? Framing::fixed : Framing::none;
  }
  // An expectation other than 100-continue: 417 (strict; lenient ignores it).
  if (!policy.allow_unknown_expectation && http11 && fields.expect && expectation_is_continue(headers) == false) {
    throw HTTPInputError("Unknown expectation", 417);
  }
  if (st.framing != Framing::none) {
    std::optional<std::string_view> expect = headers.get_first("Expect");
    st.expect_continue = http11 && expect && iequals(*expect, "100-continue");
    if (params_.decompress) {
      std::optional<std::string> ce = headers.get("Content-Encoding");
      if (ce && iequals(*ce, "gzip")) {
        gunzip_ = std::make_unique<Gunzip>();
        headers.add("X-Consumed-Content-Encoding", *ce);
        headers.remove("Content-Encoding");
      }
    }
  }
  if (xheaders_ && context_) {
    context_->apply_xheaders(headers);
    xheaders_applied_ = true;
  }
  st.need_delegate_close = true;
  return delegate.headers_received(line, headers);
}

SQUALL_HOT
void HTTP1Connection::after_request_head(ReadState& st) {
  // The delegate may have lowered the limit (a body it takes whole): refuse before
  // any body byte is read, and before 100 Continue invites it.
  if (st.framing == Framing::fixed && st.length > max_body_size_) {
    throw HTTPInputError("Content-Length too long", 413);
  }
  if (st.expect_continue && !write_finished_ && !headers_written_ && !stream_.closed()) {
    stream_.write(std::string_view("HTTP/1.1 100 (Continue)\r\n\r\n")).mark_retrieved();
  }
}

void HTTP1Connection::end_body(HTTPMessageDelegate& delegate, ReadState& st) {
  read_finished_ = true;
  if (!write_finished_ || is_client_) {
    st.need_delegate_close = false;
    delegate.finish();
  }
}

void HTTP1Connection::note_read_error(ReadState& st) {
  try {
    throw;
  } catch (const HTTPInputError& e) {
    st.input_error.emplace(e);
  } catch (const StreamClosedError&) {
    if (is_client_ && st.head_done && !read_finished_) {
      st.response_cut_short = true;
      st.input_error.emplace(HTTPConnectionClosedError());
    }
  } catch (const TimeoutError&) {
    // Header (or idle) timeout: close quietly.
  } catch (...) {
    st.other_error = std::current_exception();
  }
}

SQUALL_HOT
bool HTTP1Connection::end_read(HTTPMessageDelegate& delegate, ReadState& st) {
  if (st.input_error) {
    close();
  } else if (st.other_error || (!read_finished_ && !stream_.closed())) {
    close();
  }
  if (st.need_delegate_close) delegate.on_connection_close();
  if (xheaders_applied_ && context_) {
    context_->unapply_xheaders();
    xheaders_applied_ = false;
  }
  if (!stream_.closed()) stream_.set_close_callback({});
  if (st.other_error) std::rethrow_exception(st.other_error);
  if (st.response_cut_short) throw HTTPConnectionClosedError();  // input_error holds it sliced
  if (st.input_error && is_client_) throw *st.input_error;
  return read_finished_ && !stream_.closed();
}

Task<bool> HTTP1Connection::read_message(HTTPMessageDelegate& delegate, std::optional<Duration> idle_timeout) {
  reset_message_state();
  return read_message_from(delegate, idle_timeout, ReadStep::head, ReadState{}, std::nullopt);
}

SQUALL_HOT
HTTP1Connection::RequestRead HTTP1Connection::read_request(HTTPMessageDelegate& delegate,
                                                           std::optional<Duration> idle_timeout) {
  if (is_client_) throw std::logic_error("read_request on a client connection");
  reset_message_state();
  ReadState st;
  // Each step that completes at once is taken here; the first that cannot is where
  // read_message's coroutine takes over (with what is known so far).
  auto rest = [&](ReadStep from, FlowControl flow = std::nullopt) {
    return RequestRead(read_message_from(delegate, idle_timeout, from, std::move(st), std::move(flow)));
  };
  try {
    // A head that arrived whole (the usual case) is found without read_head's coroutine.
    size_t head_length = scan_head(st.scan);
    if (head_length == 0) return rest(ReadStep::head);
    FlowControl flow = on_request_head(delegate, st, head_length);
    if (flow) return rest(ReadStep::head_flow, std::move(flow));
    after_request_head(st);
    if (st.framing != Framing::none) return rest(ReadStep::body);
    end_body(delegate, st);
    if (!response_ended_ && !stream_.closed()) return rest(ReadStep::answer);
  } catch (...) {
    note_read_error(st);
    if (st.input_error) return rest(ReadStep::error);
  }
  return RequestRead(end_read(delegate, st));
}

Task<bool> HTTP1Connection::read_message_from(HTTPMessageDelegate& delegate, std::optional<Duration> idle_timeout,
                                              ReadStep step, ReadState st, FlowControl flow) {
  std::weak_ptr<HTTP1Connection*> weak = liveness();
  try {
    if (step == ReadStep::head) {
      for (;;) {
        // A head that arrived whole (the usual case) is found without read_head's coroutine.
        size_t head_length = scan_head(st.scan);
        if (head_length == 0) head_length = co_await read_head(idle_timeout, st.scan);
        if (!is_client_) {
          flow = on_request_head(delegate, st, head_length);
          break;
        }
        if (on_response_head(delegate, st, head_length, flow)) break;
        st.scan = {};  // an interim response: the final one follows
      }
    }
    bool body_timed_out = false;
    if (step <= ReadStep::head_flow) {
      if (flow) co_await *flow;
      if (!is_client_) after_request_head(st);
    }
    if (step <= ReadStep::body) {
      try {
        switch (st.framing) {
          case Framing::none:
            break;
          case Framing::fixed:
            co_await read_fixed_body(delegate, st.length, params_.body_timeout);
            break;
          case Framing::chunked:
            co_await read_chunked_body(delegate, params_.body_timeout);
            break;
          case Framing::until_close:
            co_await read_body_until_close(delegate);
            break;
        }
      } catch (const TimeoutError&) {
        body_timed_out = true;
      }
      if (body_timed_out) {
        log(LogLevel::info, LogCategory::general,
            "Body timeout ({:g} s without body bytes): closing the connection from {}",
            seconds(*params_.body_timeout), peer());
        close();
      } else {
        end_body(delegate, st);
      }
    }
    if (step <= ReadStep::answer && !body_timed_out) {
      if (!is_client_ && !response_ended_ && !stream_.closed()) {
        // The handler answers later: wait for it (made only then, most answers are done by now).
        finish_future_.emplace();
        stream_.set_close_callback([weak] {
          if (auto alive = weak.lock(); alive && *alive) (*alive)->on_stream_close();
        });
        Future<void> finished = *finish_future_;
        co_await finished;
        if (!weak.lock() || !*weak.lock()) co_return false;
        if (stream_.closed() && !write_finished_) st.need_delegate_close = true;  // peer left before the answer
      }
      if (is_client_ && disconnect_on_finish_) close();
    }
  } catch (...) {
    note_read_error(st);
  }
  if (st.input_error && !is_client_) {
    log(LogLevel::info, LogCategory::general, "Malformed HTTP message from {}: {}",
        context_ ? context_->to_string() : std::string(), st.input_error->what());
    if (!headers_written_ && !stream_.closed()) {
      co_await write_error_and_close(st.input_error->status(), st.input_error->what());
    }
  }
  co_return end_read(delegate, st);
}

// ---- writing -----------------------------------------------------------------------------

SQUALL_HOT
void HTTP1Connection::format_chunk(std::string& out, std::string_view chunk) {
  if (chunking_output_ && !chunk.empty()) {
    fmt::format_to(std::back_inserter(out), "{:x}\r\n", chunk.size());
    out.append(chunk);
    out.append("\r\n");
  } else {
    out.append(chunk);
  }
}

static Future<void> closed_future() {
  Future<void> f;
  f.set_exception(StreamClosedError());
  f.mark_retrieved();
  return f;
}

// One pass validates every field (unless the caller checked them as they were set)
// and notes the few the framing depends on (this runs for every response whose owner
// did not note them: repeated lookups by name showed in profiles). An unchecked set is
// read so even when noted: the pass validates it anyway. The length is parsed only when
// `body_follows`: a bodyless response's Content-Length (a HEAD's is the GET's) is passed
// on unread.
FramingLines HTTP1Connection::read_framing_lines(const HTTPHeaders& headers, bool body_follows) {
  FramingLines framing;
  std::optional<std::string_view> content_length;
  size_t content_lengths = 0;
  const bool validate = !headers.fields_checked();
  for (HeaderField field : headers) {
    if (validate && (!is_token(field.name) || !is_valid_field_value(field.value))) {
      throw std::invalid_argument(fmt::format("Invalid header: {:?}", field.name));
    }
    switch (field.name.size()) {
      case 4:
        framing.date = framing.date || header_name_is(field.name, "date");
        break;
      case 6:
        framing.server = framing.server || header_name_is(field.name, "server");
        break;
      case 14:
        if (header_name_is(field.name, "content-length")) {
          content_length = field.value;
          ++content_lengths;
        }
        break;
      case 17:
        framing.transfer_encoding = framing.transfer_encoding || header_name_is(field.name, "transfer-encoding");
        break;
      default:
        break;
    }
  }
  framing.has_content_length = content_length.has_value();
  if (content_length && body_follows) {
    // Several Content-Length lines are read joined by commas (Tornado's headers[name]).
    std::optional<std::string> joined;
    if (content_lengths > 1) joined = headers.get("Content-Length");
    ParseResult<uint64_t> parsed =
        parse_content_length(joined ? std::string_view(*joined) : *content_length, ParsePolicy::lenient());
    if (!parsed) throw std::invalid_argument("Invalid Content-Length");
    framing.content_length = *parsed;
  }
  return framing;
}

SQUALL_HOT
Future<void> HTTP1Connection::write_headers(const ResponseStartLine& start_line, HTTPHeaders& headers,
                                            std::string_view chunk) {
  if (is_client_) throw std::logic_error("write_headers(ResponseStartLine) on a client connection");
  // Most responses are 200 OK: their start line is a constant (no digits to format, no
  // reason phrase to check).
  const std::string_view reason = start_line.reason;
  const bool ok = start_line.code == 200 && reason.size() == 2 && reason[0] == 'O' && reason[1] == 'K';
  if (!ok && !is_valid_field_value(reason)) throw std::invalid_argument("Invalid reason phrase");
  const int code = start_line.code;
  const bool http11 = request_http11_;
  const bool bodyless = request_is_head_ || code == 204 || code == 304 || (code >= 100 && code < 200);
  // The framing lines as the set's owner noted them (the web layer's responses), else
  // read from the lines.
  const FramingLines* noted = headers.noted_framing();
  const FramingLines framing = noted && headers.fields_checked() ? *noted : read_framing_lines(headers, !bodyless);
  const std::optional<uint64_t> content_length =
      framing.has_content_length ? std::optional<uint64_t>(framing.content_length) : std::nullopt;
  const bool has_transfer_encoding = framing.transfer_encoding;
  chunking_output_ = http11 && !bodyless && !content_length && !has_transfer_encoding;
  if (bodyless) {
    expected_content_remaining_ = 0;
  } else {
    expected_content_remaining_ = content_length;
  }
  if (!http11) {
    bool length_known = expected_content_remaining_.has_value();
    if (request_keep_alive_header_ && !disconnect_on_finish_ && length_known) {
      headers.set("Connection", "Keep-Alive");
    } else {
      disconnect_on_finish_ = true;
    }
  } else if (!chunking_output_ && !expected_content_remaining_ && !has_transfer_encoding) {
    disconnect_on_finish_ = true;  // close-delimited body
  }
  if (disconnect_on_finish_) headers.set("Connection", "close");
  if (chunking_output_) headers.set("Transfer-Encoding", "chunked");
  if (!framing.date) headers.add("Date", current_http_date());
  if (!framing.server) headers.add("Server", "Squall");
  // Another request is already buffered behind this one: hold this response back so the
  // responses of a pipelined batch leave in one write. And while the loop runs this
  // connection's handler: the response leaves once the request is cleaned up, before the
  // connection waits for the next (wait_for_request) or at the latest when the handler
  // returns to the loop (IOLoop::flush_after_handler) — the clean-up then runs among the
  // pages the request touched, not after the send's system call. Not when the connection
  // is about to close: those bytes must be written before it does.
  corking_ = (rpos_ < rbuf_.size() || loop_->holding_writes()) && !disconnect_on_finish_;

  // The head is sized first, then filled with plain copies: no capacity check per piece
  // (this runs for every response). Fields were validated above; what was added since is
  // the connection's own. A set that holds its lines in wire form (the web layer's: each
  // added or set one by one) is copied as one block.
  constexpr std::string_view kOkLine = "HTTP/1.1 200 OK\r\n";
  char code_digits[8];
  std::string_view code_text;
  if (!ok) code_text = {code_digits, std::to_chars(code_digits, code_digits + sizeof code_digits, code).ptr};
  const std::optional<std::string_view> lines = headers.wire_lines();
  size_t size = (ok ? kOkLine.size() : 9 + code_text.size() + 1 + reason.size() + 2) + 2;
  if (lines) {
    size += lines->size();
  } else {
    for (HeaderField field : headers) size += field.name.size() + 2 + field.value.size() + 2;
  }
  // A response held back behind the next pipelined request is built where send() would
  // copy it to: at the end of the corked batch.
  const bool in_cork = corking_ && !stream_.closed() && corked_.size() + size + chunk.size() <= kCorkLimit;
  std::string& head_bytes = in_cork ? corked_ : out_;
  const size_t at = in_cork ? corked_.size() : 0;
  if (in_cork) {
    if (corked_.empty()) {
      // Held alone (most responses: held until the handler returns to the loop), it is
      // built in the connection's head buffer, lent to corked_ until it is sent: no
      // buffer of its own per connection. A move, not swap(): libstdc++'s exchanges two
      // heap buffers all the same, inline (swap() is a call of ~90 instructions), and
      // what either held is of no use.
      corked_ = std::move(out_);
    } else if (corked_.capacity() < kFirstCork) {
      corked_.reserve(kFirstCork);  // a pipelined batch: room for a few answers
    }
  }
  head_bytes.reserve(at + size + chunk.size());
  head_bytes.resize(at + size);
  char* p = head_bytes.data() + at;
  auto put = [&p](std::string_view piece) {
    std::memcpy(p, piece.data(), piece.size());
    p += piece.size();
  };
  if (ok) {
    put(kOkLine);
  } else {
    put("HTTP/1.1 ");
    put(code_text);
    put(" ");
    put(reason);
    put("\r\n");
  }
  if (lines) {
    if (!lines->empty()) put(*lines);  // memcpy from an empty arena's null is undefined
  } else {
    for (HeaderField field : headers) {
      put(field.name);
      put(": ");
      put(field.value);
      put("\r\n");
    }
  }
  put("\r\n");
  headers_written_ = true;
  return write_head(head_bytes, chunk);
}

Future<void> HTTP1Connection::write_headers(const RequestStartLine& start_line, HTTPHeaders& headers,
                                            std::string_view chunk) {
  if (!is_client_) throw std::logic_error("write_headers(RequestStartLine) on a server connection");
  if (!is_token(start_line.method)) throw std::invalid_argument("Invalid method");
  for (char c : start_line.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) throw std::invalid_argument("Invalid request target");
  }
  request_method_ = start_line.method;
  chunking_output_ = (start_line.method == "POST" || start_line.method == "PUT" || start_line.method == "PATCH") &&
                     !headers.contains("Content-Length") &&
                     (!headers.contains("Transfer-Encoding") || headers.get("Transfer-Encoding") == "chunked");
  if (chunking_output_) headers.set("Transfer-Encoding", "chunked");
  if (std::optional<std::string> cl = headers.get("Content-Length")) {
    ParseResult<uint64_t> parsed = parse_content_length(*cl, ParsePolicy::lenient());
    if (!parsed) throw std::invalid_argument("Invalid Content-Length");
    expected_content_remaining_ = *parsed;
  } else {
    expected_content_remaining_.reset();
  }
  out_.clear();
  fmt::format_to(std::back_inserter(out_), "{} {} HTTP/1.1\r\n", start_line.method, start_line.target);
  for (HeaderField field : headers) append_header_line(out_, field.name, field.value);
  out_.append("\r\n");
  headers_written_ = true;
  return write_head(out_, chunk);
}

SQUALL_HOT
Future<void> HTTP1Connection::write_head(std::string& head_bytes, std::string_view chunk) {
  const bool in_cork = &head_bytes == &corked_;  // the head was built at the batch's end
  if (!chunk.empty()) {
    if (expected_content_remaining_) {
      if (chunk.size() > *expected_content_remaining_) {
        stream_.close();
        throw HTTPOutputError("Tried to write more data than Content-Length");
      }
      *expected_content_remaining_ -= chunk.size();
    }
    if (!in_cork && !chunking_output_ && chunk.size() >= kSeparateBody && !stream_.closed()) {
      // A large body is not copied behind the head: two writes cost less than the copy.
      // Both go at once (after what a pipelined batch holds): holding the head back for
      // the handler's return would only copy it.
      corking_ = false;
      send(head_bytes).mark_retrieved();
      if (stream_.closed()) return closed_future();
      return flow_control(send(chunk));
    }
    format_chunk(head_bytes, chunk);
  }
  if (in_cork) return flow_control(hold_corked());
  if (stream_.closed()) return closed_future();
  return flow_control(send(head_bytes));
}

SQUALL_HOT
Future<void> HTTP1Connection::send(std::string_view bytes) {
  if (corking_ && corked_.size() + bytes.size() <= kCorkLimit) {
    corked_.append(bytes);
    return hold_corked();
  }
  if (!corked_.empty()) {
    // What is corked goes first: in the same write if these bytes are few.
    if (bytes.size() < kSeparateBody) {
      corked_.append(bytes);
      flush_corked();
      return pending_write_ ? *pending_write_ : closed_future();
    }
    flush_corked();
    if (stream_.closed()) return closed_future();
  }
  pending_write_ = stream_.write(bytes);
  watch_send();
  return *pending_write_;
}

SQUALL_HOT
Future<void> HTTP1Connection::hold_corked() {
  pending_write_.reset();
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    if (loop_->holding_writes()) {
      flush_by_loop_ = true;
      loop_->flush_after_handler(*this);
    } else {
      flush_on_next_iteration();
    }
  }
  return detail::completed_future();  // the thread's shared done future: none made per response
}

// Outside a handler's run (a response written from a callback or a timer), the corked
// bytes leave on the loop's next iteration. Apart from hold_corked, which every
// keep-alive response runs: the callback's code would spread it over two pages.
void HTTP1Connection::flush_on_next_iteration() {
  stream_.io_loop().add_callback([weak = liveness()] {
    if (auto alive = weak.lock(); alive && *alive) {
      (*alive)->flush_scheduled_ = false;
      (*alive)->flush_corked();
    }
  });
}

SQUALL_HOT
void HTTP1Connection::flush_held_writes() {
  flush_scheduled_ = false;
  flush_by_loop_ = false;
  flush_corked();
}

SQUALL_HOT
void HTTP1Connection::flush_corked() {
  if (corked_.empty() || stream_.closed()) return;
  if (corked_.capacity() <= kKeptCork) {
    // The socket takes the batch at once, usually (the stream copies what it does not):
    // the buffer keeps its room for the next batch.
    pending_write_ = stream_.write(std::string_view(corked_));
  } else {
    pending_write_ = stream_.write(std::move(corked_));
  }
  pending_write_->mark_retrieved();  // a failed write closes the stream; that is the report
  corked_.clear();
  if (corked_.capacity() > out_.capacity()) {
    // The head buffer lent by write_headers goes back. What out_ held meanwhile was sent
    // or copied in: send() keeps a view of out_ across this call only for bytes of
    // kSeparateBody or more, in a buffer larger than any kept here (kKeptCork).
    // (libstdc++'s move hands out_'s own heap buffer to corked_, as swap() did.)
    out_ = std::move(corked_);
    corked_.clear();
  }
  watch_send();
}

SQUALL_HOT
Future<void> HTTP1Connection::flow_control(Future<void> sent) {
  const size_t mark = params_.output_high_water;
  if (mark == 0 || stream_.closed()) return sent;
  if (stream_.write_buffer_size() <= mark) {
    // A send that is already done (corked, or taken by the socket at once) is that ready
    // future: no second one made per response.
    if (sent.done() && !sent.state()->error) return sent;
    return detail::completed_future();
  }
  return stream_.drained(mark);
}

SQUALL_HOT
void HTTP1Connection::watch_send() {
  // Most responses leave nothing queued: that is tested first, on the stream's hot fields,
  // so the watchdog's own state (cold, after the parameters) is read only when it matters.
  if (stream_.closed() || !stream_.writing() || !params_.send_timeout || send_timer_) return;
  if (send_progress_time_ == TimePoint{} || stream_.bytes_written() != send_progress_) {
    send_progress_ = stream_.bytes_written();
    send_progress_time_ = loop_->time();
  }
  // Checked four times per period: the drop comes at most a quarter period late.
  Duration period = std::max<Duration>(*params_.send_timeout / 4, std::chrono::milliseconds(1));
  send_timer_ = loop_->call_later(period, [this] { check_send(); });  // removed by ~HTTP1Connection
}

void HTTP1Connection::check_send() {
  send_timer_.reset();
  if (stream_.closed() || !stream_.writing()) {
    send_progress_time_ = TimePoint{};
    return;
  }
  if (stream_.bytes_written() == send_progress_ && loop_->time() - send_progress_time_ >= *params_.send_timeout) {
    log(LogLevel::info, LogCategory::general,
        "Send timeout ({:g} s without progress): closing the connection to {} ({} bytes unsent)",
        seconds(*params_.send_timeout), peer(), stream_.write_buffer_size());
    close();
    return;
  }
  watch_send();
}

Future<void> HTTP1Connection::write(std::string_view chunk) {
  // A body written in pieces (a streaming handler's flushes): let Nagle coalesce them
  // until finish() turns TCP_NODELAY back on, as Tornado does. A response written whole
  // never gets here, so it costs no setsockopt.
  if (!is_client_) stream_.set_nodelay(false);
  if (expected_content_remaining_) {
    if (chunk.size() > *expected_content_remaining_) {
      stream_.close();
      throw HTTPOutputError("Tried to write more data than Content-Length");
    }
    *expected_content_remaining_ -= chunk.size();
  }
  if (stream_.closed()) return closed_future();
  if (chunking_output_ && !chunk.empty()) {
    std::string data;
    data.reserve(chunk.size() + 20);
    format_chunk(data, chunk);
    return flow_control(send(data));
  }
  return flow_control(send(chunk));
}

SQUALL_HOT
void HTTP1Connection::finish() {
  if (expected_content_remaining_ && *expected_content_remaining_ != 0 && !stream_.closed()) {
    uint64_t missing = *expected_content_remaining_;
    stream_.close();
    response_ended();
    throw HTTPOutputError(fmt::format("Tried to write {} bytes less than Content-Length", missing));
  }
  if (chunking_output_ && !stream_.closed()) send("0\r\n\r\n");
  write_finished_ = true;
  if (!read_finished_) disconnect_on_finish_ = true;
  // The end of the response goes out at once. Not needed on a server connection about to
  // close (closing pushes what is queued, Nagle or not): as nginx's tcp_nodelay, which
  // only applies to keep-alive connections, this saves a syscall per such connection.
  if (is_client_ || !disconnect_on_finish_) stream_.set_nodelay(true);
  const size_t mark = params_.output_high_water;
  if (!is_client_ && !disconnect_on_finish_ && mark != 0 && !stream_.closed()) {
    // A connection that stays open goes on to the next request once the output is back
    // within the high-water mark (the rest drains meanwhile); until then a pipelined
    // request is not read.
    if (pending_write_) pending_write_->mark_retrieved();
    if (stream_.write_buffer_size() <= mark) {
      finish_request();
    } else {
      finish_when(stream_.drained(mark));
    }
  } else if (!pending_write_ || pending_write_->done()) {
    // Everything was written already (the usual case: the socket took the response at
    // once), so there is nothing to wait for.
    if (pending_write_) pending_write_->mark_retrieved();
    finish_request();
  } else {
    // Closing drops what is queued: wait until all of it was sent (bounded by the send
    // timeout).
    finish_when(*pending_write_);
  }
}

void HTTP1Connection::finish_when(Future<void> written) {
  written.add_done_callback([weak = liveness()](Future<void>& f) {
    f.mark_retrieved();
    if (auto alive = weak.lock(); alive && *alive) (*alive)->finish_request();
  });
}

SQUALL_HOT
void HTTP1Connection::finish_request() {
  close_callback_ = nullptr;
  if (!is_client_ && disconnect_on_finish_) {
    close();
    return;
  }
  // TCP_NODELAY, set for the end of the response, stays on (as nginx's tcp_nodelay):
  // turning it off after every response cost a syscall per request; only a response
  // written in pieces turns it off (write()).
  if (!stream_.closed()) stream_.set_close_callback({});
  response_ended();
}

void HTTP1Connection::response_ended() {
  response_ended_ = true;
  if (finish_future_ && !finish_future_->done()) finish_future_->set_result();
}

void HTTP1Connection::on_stream_close() {
  Callback callback = std::move(close_callback_);
  close_callback_ = nullptr;
  if (callback) callback();
  response_ended();
}

SQUALL_HOT
void HTTP1Connection::close() {
  flush_corked();  // best effort: answers already made go out before the close
  stream_.close();
  response_ended();
}

// ---- HTTPServerConnection ------------------------------------------------------------------

HTTPServerConnection::HTTPServerConnection(std::unique_ptr<IOStream> stream, const SocketAddress& address,
                                           const HTTPServerOptions& options)
    : HTTPServerConnection(std::move(stream), address, options,
                           HTTP1Connection::shared_parameters(options.params)) {}

SQUALL_HOT
HTTPServerConnection::HTTPServerConnection(std::unique_ptr<IOStream> stream, const SocketAddress& address,
                                           const HTTPServerOptions& options, HTTP1Connection::SharedParameters params)
    : stream_(std::move(stream)),
      idle_timeout_(options.idle_connection_timeout > Duration::zero()
                        ? std::optional<Duration>(options.idle_connection_timeout)
                        : std::nullopt),
      context_(address, options.protocol, options.trusted_downstream) {
  conn_ = std::make_unique<HTTP1Connection>(*stream_, HTTP1Connection::Side::server, std::move(params), &context_,
                                            options.xheaders);
}

SQUALL_HOT
HTTPServerConnection::~HTTPServerConnection() { conn_.reset(); }  // before the stream and context it uses

namespace {

// The request loop's hold on one request: its message delegate goes first, then the
// connection's delegate hears that the request ended — however the loop leaves the request
// (next iteration, exception, or its frame destroyed while suspended).
struct RequestInFlight {
  std::unique_ptr<HTTPMessageDelegate> message;
  HTTPServerConnectionDelegate& delegate;
  HTTPServerConnection& connection;
  ~RequestInFlight() {
    message.reset();
    delegate.request_ended(connection);
  }
};

}  // namespace

Task<void> HTTPServerConnection::serve(HTTPServerConnectionDelegate& delegate) {
  return request_loop(delegate, nullptr);
}

SQUALL_HOT
Task<void> HTTPServerConnection::serve(std::unique_ptr<HTTPServerConnectionDelegate> delegate) {
  HTTPServerConnectionDelegate& target = *delegate;
  return request_loop(target, std::move(delegate));
}

// `owned` lives in the frame, past the body's end: destroyed with the frame, it may take
// this connection along, which nothing here touches after the body.
SQUALL_HOT
Task<void> HTTPServerConnection::request_loop(HTTPServerConnectionDelegate& delegate,
                                              [[maybe_unused]] std::unique_ptr<HTTPServerConnectionDelegate> owned) {
  serving_ = true;
  try {
    for (;;) {
      // Between requests only this small wait is suspended, not the request machinery
      // (a delegate and read_message's frame): that is what an idle connection costs,
      // until HTTPServer compacts it (hand_over_socket).
      // A pipelined request already buffered needs no wait (nor its coroutine).
      if (!conn_->has_buffered_input()) {
        waiting_ = true;
        bool arrived = co_await conn_->wait_for_request(idle_timeout_);
        waiting_ = false;
        if (!arrived) break;
      }
      const RequestInFlight request{delegate.start_request(*this, *conn_), delegate, *this};
      // Most requests are handled within this call, without read_message's coroutine.
      bool keep_going = co_await conn_->read_request(*request.message, idle_timeout_);
      if (!keep_going) break;
    }
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Uncaught exception in HTTP connection from {}: {}",
        context_.to_string(), describe_current_exception());
  }
  // Through the connection: answers still held for the end of the handler's run (when an
  // exception ended the loop) go out before the close.
  conn_->close();
  if (!handed_over_) delegate.on_close(*this);
  serving_ = false;
  if (loop_ended_) loop_ended_->set_result();
}

bool HTTPServerConnection::idle() const {
  // The wait reads the stream straight into nothing: a pending read with an empty buffer
  // (a read that completed has its bytes in a future the loop is about to deliver).
  // Only a stream that can hand its socket over (edge-triggered, as TCPServer makes them;
  // see IOStream::can_hand_over) is idle in this sense: another is never compacted.
  return waiting_ && !handed_over_ && stream_->reading() && stream_->can_hand_over();
}

int HTTPServerConnection::hand_over_socket(IOLoop::FdHandler& next) {
  if (!idle()) throw std::logic_error("HTTPServerConnection is not idle; cannot hand over its socket");
  const int fd = stream_->hand_over_socket(next);
  handed_over_ = true;  // set before the request loop resumes (on a later loop turn)
  return fd;
}

Future<void> HTTPServerConnection::close() {
  conn_->close();
  if (!serving_) return make_ready_future();
  if (!loop_ended_) loop_ended_.emplace();
  return *loop_ended_;
}

}  // namespace squall
