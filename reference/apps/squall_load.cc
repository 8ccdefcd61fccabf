// squall-load: an HTTP/1.1 load generator that measures every response, open-loop or
// closed-loop, on Squall's own IOLoop and TCP/TLS streams (load/run.py --engine squall-load).
//
//   squall-load --rate 20000 -c 64 -d 10 --warmup 2 http://127.0.0.1:8080/plaintext
//   squall-load --rate 0 -c 64 -d 10 http://127.0.0.1:8080/plaintext     # closed loop, like wrk
//   squall-load --scenario pipeline -d 5 http://127.0.0.1:8080           # load/scenarios.py's
//   squall-load --tls --ca-file ca.pem --close https://127.0.0.1:8443/plaintext
//
// Why: wrk measures closed-loop — a connection sends its next request only after the
// previous response — so when the server stalls wrk stops sending, and the requests that
// real users would have sent meanwhile are never measured (coordinated omission). With
// --rate R the requests are scheduled instead at fixed intended times t0 + k/R, each taken
// by the next connection with room for it, and a response's latency is measured from its
// request's intended time: a stall of S seconds shows as the ~R×S requests it delayed,
// which wait S/2 on average. --rate 0 is closed-loop (latency from the request's write),
// as wrk does, for throughput comparisons. Either way every response is timed on its own,
// pipelined ones included (--pipeline N keeps up to N requests in flight per connection).
//
// The engine: C connections (IOStreams from TCPClient, TLS with --tls); requests are
// written whole from a pre-built buffer; responses are read with partial read_bytes and
// framed by the reference's own parsers (http_parse.h: status line, header block,
// Content-Length, Transfer-Encoding; chunked_decoder.h for chunked bodies), views only,
// no copies of bodies. Open-loop pacing uses a timerfd on the loop (microsecond
// wake-ups; the loop's own timers round to milliseconds) with a 1 µs timer slack. How late
// requests left against their schedule is reported too (send_lag_us): large lag means the
// connections (or this process) could not keep up, not that the server was slow; and
// how late the timer itself woke (timer_lateness_us): this process's own share of that lag.
//
// Run: connect all connections (keep-alive), run --warmup seconds unrecorded, then
// --duration seconds recorded, then stop scheduling and wait for the responses still due
// (at most --timeout). A request counts in the results if its intended start (closed
// loop: its write) lies in the recorded window. A request still unanswered --timeout
// after its write is a timeout error (its connection is closed and reopened). With
// --close each request gets its own connection and its latency includes the connect (and
// TLS handshake).
//
// Output: one JSON object on stdout — requests, errors by kind (connect, read, write,
// timeout, status (>= 400, as wrk), parse), achieved rate, latency percentiles in µs (p50,
// p90, p99, p99.9, p99.99, max), and the serialised histogram (hdr_histogram.h; ns).
// Exit status 0 when the run completed (errors are in the JSON), 2 for bad arguments.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hdr_histogram.h"
#include "squall/chunked_decoder.h"
#include "squall/http_parse.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"
#include "squall/ssl_context.h"
#include "squall/task.h"
#include "squall/tcpclient.h"

namespace {

using squall::load::HdrHistogram;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(squall::Clock::now().time_since_epoch()).count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

bool iequals(std::string_view a, std::string_view b) { return squall::header_name_equals(a, b); }

// Does a comma-separated field value hold `token` (case-insensitive)? ("keep-alive, Close")
bool has_token(std::string_view value, std::string_view token) {
  // The walk stops (false) at the first element that is the token.
  return !squall::for_each_list_element(value, [&](std::string_view item) { return !iequals(item, token); });
}

// ---------------------------------------------------------------------------- configuration

struct Config {
  std::string url;
  std::string host;
  uint16_t port = 80;
  bool tls = false;
  std::string ca_file;
  bool insecure = false;
  std::string method = "GET";
  std::string path;  // "" = the URL's path, or "/"
  std::vector<std::string> headers;
  std::string body;
  std::string scenario;
  double rate = 0;
  int connections = 64;
  int pipeline = 1;
  bool close = false;
  double duration = 10;
  double warmup = 0;
  double timeout = 10;
  bool histogram = true;
};

enum ErrorKind { kConnect, kRead, kWrite, kTimeout, kStatus, kParse, kErrorKinds };
constexpr std::array<const char*, kErrorKinds> kErrorNames = {"connect", "read", "write", "timeout", "status",
                                                              "parse"};

// The request of a scenario from load/scenarios.py, the one definition the wrk scripts,
// the pre-flight check, Locust and this program share: `request.py NAME` prints it.
bool load_scenario(Config& cfg, const std::string& load_dir, bool explicit_pipeline, bool explicit_close,
                   bool explicit_connections) {
  std::string cmd = "/usr/bin/python3 '" + load_dir + "/engines/request.py' '" + cfg.scenario + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return false;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  if (pclose(pipe) != 0) {
    std::fprintf(stderr, "squall-load: %s failed\n", cmd.c_str());
    return false;
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t sp = line.find(' ');
    std::string key = line.substr(0, sp);
    std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "method") {
      cfg.method = value;
    } else if (key == "path") {
      cfg.path = value;
    } else if (key == "header") {
      cfg.headers.push_back(value);
    } else if (key == "body-hex") {
      cfg.body.clear();
      for (size_t i = 0; i + 1 < value.size(); i += 2) cfg.body.push_back(static_cast<char>(std::stoi(value.substr(i, 2), nullptr, 16)));
    } else if (key == "pipeline") {
      if (!explicit_pipeline) cfg.pipeline = std::stoi(value);
    } else if (key == "close") {
      if (!explicit_close) cfg.close = value == "1";
    } else if (key == "connections") {
      if (!explicit_connections) cfg.connections = std::stoi(value);  // a fixed count (many_connections)
    }
  }
  return true;
}

// The directory holding engines/request.py: --load-dir, $SQUALL_LOAD_DIR, ./load, or the
// source tree the binary was built in (<repo>/build/<dir>/reference/squall-load).
std::string find_load_dir(const std::string& given) {
  auto ok = [](const std::string& d) { return access((d + "/engines/request.py").c_str(), R_OK) == 0; };
  if (!given.empty()) return given;
  if (const char* env = std::getenv("SQUALL_LOAD_DIR"); env && ok(env)) return env;
  if (ok("load")) return "load";
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    std::string dir(exe, static_cast<size_t>(len));
    for (int up = 0; up < 5; ++up) {
      size_t slash = dir.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      dir.resize(slash);
      if (ok(dir + "/load")) return dir + "/load";
    }
  }
  return "load";
}

// ---------------------------------------------------------------------------- the run

struct InFlight {
  int64_t intended;  // scheduled start (closed loop: the write)
  int64_t started;   // the write, or the connect that preceded it (--close)
};

struct Slot {
  size_t id = 0;
  uint64_t gen = 0;  // bumped whenever the connection is dropped: stale coroutines check it
  std::unique_ptr<squall::IOStream> stream;
  enum class State { down, connecting, open } state = State::down;
  std::deque<InFlight> inflight;
  bool queued = false;       // in the available queue
  int64_t retry_at = 0;      // reconnect (keep-alive) or reuse (--close) no earlier than this
  int64_t served = 0;        // responses on the current connection
  // Response parsing.
  enum class Phase { head, body, chunked, until_close } phase = Phase::head;
  std::string carry;         // unparsed bytes kept for the next read
  uint64_t body_left = 0;
  std::optional<squall::ChunkedDecoder> chunked;
  int status = 0;
  bool close_after = false;
  int64_t response_bytes = 0;
};

class Runner {
 public:
  Runner(Config cfg, squall::IOLoop& loop) : cfg_(std::move(cfg)), loop_(loop) {
    open_loop_ = cfg_.rate > 0;
    depth_ = cfg_.close ? 1 : static_cast<size_t>(cfg_.pipeline);
    head_request_ = cfg_.method == "HEAD";
    std::string req = cfg_.method + " " + cfg_.path + " HTTP/1.1\r\nHost: " + cfg_.host;
    bool default_port = cfg_.port == (cfg_.tls ? 443 : 80);
    if (!default_port) req += ":" + std::to_string(cfg_.port);
    req += "\r\n";
    bool has_length = false, has_connection = false;
    for (const std::string& h : cfg_.headers) {
      std::string_view name = std::string_view(h).substr(0, h.find(':'));
      if (iequals(name, "Content-Length")) has_length = true;
      if (iequals(name, "Connection")) has_connection = true;
      req += h + "\r\n";
    }
    if (cfg_.close && !has_connection) req += "Connection: close\r\n";
    if (!cfg_.body.empty() && !has_length) req += "Content-Length: " + std::to_string(cfg_.body.size()) + "\r\n";
    req += "\r\n" + cfg_.body;
    batches_.resize(depth_ + 1);
    for (size_t k = 1; k <= depth_; ++k)
      for (size_t i = 0; i < k; ++i) batches_[k] += req;
    slots_.resize(static_cast<size_t>(cfg_.connections));
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].id = i;
    if (cfg_.tls) {
      squall::SSLOptions o;
      o.ca_certs = cfg_.ca_file;
      o.validate_cert = !cfg_.insecure;
      o.check_hostname = !cfg_.insecure;
      ssl_ = squall::SSLContext::client(o);
    }
    timeout_ns_ = static_cast<int64_t>(cfg_.timeout * 1e9);
  }

  ~Runner() {
    if (timer_fd_ >= 0) {
      loop_.remove_handler(timer_fd_);
      ::close(timer_fd_);
    }
  }

  // Runs the whole measurement on the loop; returns when it is over.
  void run() {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // precise timerfd wake-ups
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
    loop_.add_handler(
        timer_fd_,
        [this](int fd, uint32_t) {
          uint64_t expirations;
          [[maybe_unused]] ssize_t n = ::read(fd, &expirations, sizeof expirations);
          int64_t now = now_ns();
          // How late this process woke for its own schedule: the client's share of the
          // send lag (descheduled, or its loop busy), as opposed to waiting for a connection.
          if (armed_for_ && in_window(armed_for_)) wake_lag_.record(now - armed_for_);
          armed_for_ = 0;
          pump(now);
        },
        squall::IOLoop::READ);
    wall0_ = now_ns();
    cpu0_ = cpu_seconds();
    if (cfg_.close) {
      start_schedule();
    } else {
      // Connect every connection first; the schedule starts once all have settled.
      pending_connects_ = slots_.size();
      for (Slot& s : slots_) connect(s, now_ns());
    }
    housekeeping();
    loop_.start();
  }

  void print_json() const;

 private:
  friend squall::Task<void> connect_task(Runner* r, size_t id, uint64_t gen);
  friend squall::Task<void> read_task(Runner* r, size_t id, uint64_t gen, squall::IOStream* stream);

  int64_t intended(int64_t k) const { return t0_ + static_cast<int64_t>(static_cast<double>(k) * interval_ns_); }
  bool in_window(int64_t t) const { return t >= t_measure_ && t < t_end_; }

  void start_schedule() {
    started_ = true;
    t0_ = now_ns();
    t_measure_ = t0_ + static_cast<int64_t>(cfg_.warmup * 1e9);
    t_end_ = t_measure_ + static_cast<int64_t>(cfg_.duration * 1e9);
    if (open_loop_) {
      interval_ns_ = 1e9 / cfg_.rate;
      k_end_ = static_cast<int64_t>(std::ceil(static_cast<double>(t_end_ - t0_) / interval_ns_));
    }
    for (Slot& s : slots_)
      if (usable(s)) make_available(s);
    pump(now_ns());
  }

  bool usable(const Slot& s) const {
    if (cfg_.close) return s.state == Slot::State::down && s.inflight.empty();
    return s.state == Slot::State::open && s.inflight.size() < depth_;
  }
  void make_available(Slot& s) {
    if (!s.queued) {
      s.queued = true;
      available_.push_back(s.id);
    }
  }

  void error(ErrorKind kind, int64_t n, std::string_view why) {
    if (n <= 0) return;
    errors_[kind] += n;
    if (first_error_[kind].empty()) first_error_[kind] = std::string(why);
  }
  // Errors for the requests of a slot: only those in the window count.
  void fail_inflight(Slot& s, ErrorKind kind, std::string_view why) {
    int64_t n = 0;
    for (const InFlight& f : s.inflight)
      if (in_window(f.intended)) ++n;
    error(kind, n, why);
    s.inflight.clear();
  }

  // Hands due requests to connections with room: the heart of the schedule.
  void pump(int64_t now) {
    if (!started_ || finished_) return;
    if (!open_loop_) {
      if (now >= t_end_) return;
      while (!available_.empty()) {
        Slot& s = take_available();
        if (!usable(s)) continue;
        size_t n = depth_ - s.inflight.size();
        for (size_t i = 0; i < n; ++i) s.inflight.push_back({now, now});
        dispatch(s, n, now);
      }
      return;
    }
    while (true) {
      bool retry = !retry_.empty();
      if (!retry) {
        if (next_k_ >= k_end_) return;
        int64_t t = intended(next_k_);
        if (t > now) {
          arm(t);
          return;
        }
      }
      if (available_.empty()) return;  // a backlog: the next completion pumps again
      Slot& s = take_available();
      if (!usable(s)) continue;
      size_t n = 0;
      while (s.inflight.size() < depth_) {
        if (!retry_.empty()) {
          s.inflight.push_back({retry_.front(), now});
          retry_.pop_front();
        } else if (next_k_ < k_end_ && intended(next_k_) <= now) {
          int64_t t = intended(next_k_++);
          s.inflight.push_back({t, now});
          if (in_window(t)) lag_.record(now - t);
        } else {
          break;
        }
        ++n;
      }
      dispatch(s, n, now);
    }
  }

  Slot& take_available() {
    Slot& s = slots_[available_.front()];
    available_.pop_front();
    s.queued = false;
    return s;
  }

  // The last n requests of s.inflight go out (or, with --close, a connection is opened for them).
  void dispatch(Slot& s, size_t n, int64_t now) {
    if (n == 0) return;
    if (cfg_.close) {
      connect(s, now);
      return;
    }
    write(s, n);
    if (usable(s)) make_available(s);
  }

  void write(Slot& s, size_t n) {
    try {
      s.stream->write(std::string_view(batches_[n]));
    } catch (const std::exception& e) {
      drop(s, kWrite, e.what());
    }
  }

  void arm(int64_t t) {
    if (armed_for_ == t) return;
    armed_for_ = t;
    itimerspec spec{};
    spec.it_value.tv_sec = t / 1'000'000'000;
    spec.it_value.tv_nsec = t % 1'000'000'000;
    timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void connect(Slot& s, int64_t now) {
    s.state = Slot::State::connecting;
    ++s.gen;
    if (!s.inflight.empty()) {
      // --close: the request's clock started at the connect (closed loop) or before.
      for (InFlight& f : s.inflight) f.started = now;
    }
    spawn_connect(s);
  }
  void spawn_connect(Slot& s);

  void connected(Slot& s, std::unique_ptr<squall::IOStream> stream) {
    ++connections_opened_;
    s.stream = std::move(stream);
    s.stream->set_nodelay(true);
    s.state = Slot::State::open;
    reset_parser(s);
    spawn_reader(s);
    if (!started_) {
      if (--pending_connects_ == 0) start_schedule();
      return;
    }
    if (cfg_.close) {
      write(s, s.inflight.size());
    } else if (usable(s)) {
      make_available(s);
      pump(now_ns());
    }
  }
  void spawn_reader(Slot& s);

  void connect_failed(Slot& s, const std::exception& e) {
    s.state = Slot::State::down;
    int64_t now = now_ns();
    if (!started_ || now >= t_measure_) error(kConnect, 1, e.what());
    if (cfg_.close) {
      // The request that wanted this connection: back to the front of the queue (open
      // loop, keeping its intended time) or dropped (closed loop); the slot retries later.
      if (open_loop_ && !s.inflight.empty() && now < t_end_ + timeout_ns_) retry_.push_front(s.inflight.front().intended);
      s.inflight.clear();
    }
    s.retry_at = now + 100'000'000;  // 100 ms: a refused connect must not spin
    if (!started_ && --pending_connects_ == 0) start_schedule();
  }

  // The connection is gone: the requests on it fail with `kind`; the slot is reopened
  // (keep-alive) or freed (--close).
  void drop(Slot& s, ErrorKind kind, std::string_view why) {
    fail_inflight(s, kind, why);
    close_slot(s);
  }

  void close_slot(Slot& s) {
    ++s.gen;
    s.stream.reset();
    s.state = Slot::State::down;
    reset_parser(s);
    bool served = s.served > 0;
    s.served = 0;
    if (finished_) return;
    int64_t now = now_ns();
    if (!served) {
      s.retry_at = now + 100'000'000;  // a connection that served nothing: no tight reconnect loop
    } else if (cfg_.close) {
      if (usable(s)) make_available(s);
      pump(now);
    } else {
      connect(s, now);
    }
  }

  static void reset_parser(Slot& s) {
    s.phase = Slot::Phase::head;
    s.carry.clear();
    s.body_left = 0;
    s.chunked.reset();
    s.status = 0;
    s.close_after = false;
    s.response_bytes = 0;
  }

  // Bytes from the connection; false once the connection has been dropped or closed.
  bool on_data(Slot& s, const std::string& data) {
    int64_t now = now_ns();
    std::string_view in;
    if (s.carry.empty()) {
      in = data;
    } else {
      s.carry += data;
      in = s.carry;
    }
    size_t pos = 0;
    bool open = true;
    while (open) {
      if (s.phase == Slot::Phase::head) {
        if (pos == in.size()) break;
        size_t end = in.find("\r\n\r\n", pos);
        if (end == std::string_view::npos) {
          if (in.size() - pos > 64 * 1024) {
            drop(s, kParse, "response head larger than 64 KiB");
            return false;
          }
          break;
        }
        std::string_view head = in.substr(pos, end + 4 - pos);
        pos = end + 4;
        if (!parse_head(s, head)) return false;
        if (s.phase == Slot::Phase::head && s.status >= 200) open = complete(s, now);
        continue;
      }
      if (s.phase == Slot::Phase::body) {
        uint64_t take = std::min<uint64_t>(s.body_left, in.size() - pos);
        pos += take;
        s.body_left -= take;
        s.response_bytes += static_cast<int64_t>(take);
        if (s.body_left > 0) break;
        open = complete(s, now);
        continue;
      }
      if (s.phase == Slot::Phase::chunked) {
        auto step = s.chunked->step(in.substr(pos), SIZE_MAX);
        if (!step) {
          drop(s, kParse, std::string("chunked body: ") + std::string(step.error().reason));
          return false;
        }
        pos += step->consumed;
        s.response_bytes += static_cast<int64_t>(step->consumed);
        if (step->kind == squall::ChunkedStep::Kind::need_more) break;
        if (step->kind == squall::ChunkedStep::Kind::done) open = complete(s, now);
        continue;
      }
      // until_close: the body is everything up to EOF.
      s.response_bytes += static_cast<int64_t>(in.size() - pos);
      pos = in.size();
      break;
    }
    if (!open) return false;
    if (pos < in.size()) {
      if (s.carry.empty()) {
        s.carry.assign(in.substr(pos));
      } else {
        s.carry.erase(0, pos);
      }
    } else {
      s.carry.clear();
    }
    pump(now);
    return true;
  }

  // A response head: its status and framing. False if it was malformed (connection dropped).
  bool parse_head(Slot& s, std::string_view head) {
    size_t line_end = head.find("\r\n");
    auto line = squall::parse_response_line(head.substr(0, line_end));
    if (!line) {
      drop(s, kParse, std::string("status line: ") + std::string(line.error().reason));
      return false;
    }
    fields_.clear();
    squall::HeadLimits limits;
    limits.unfold_obs_fold = true;
    auto block = squall::parse_header_block(head.substr(line_end + 2), fields_, limits);
    if (!block) {
      drop(s, kParse, std::string("header block: ") + std::string(block.error().reason));
      return false;
    }
    s.response_bytes += static_cast<int64_t>(head.size());
    int code = line->code;
    if (s.inflight.empty()) {
      drop(s, kParse, "a response nobody asked for");
      return false;
    }
    if (code < 200) {  // interim (100 Continue, 103): the final one follows
      s.status = code;
      return true;
    }
    s.status = code;
    s.close_after = line->minor == 0;
    std::string lengths;
    bool chunked = false;
    for (const squall::HeaderField& f : fields_) {
      if (iequals(f.name, "Content-Length")) {
        if (!lengths.empty()) lengths += ", ";
        lengths += f.value;
      } else if (iequals(f.name, "Transfer-Encoding")) {
        auto te = squall::parse_transfer_encoding(f.value);
        if (!te) {
          drop(s, kParse, "Transfer-Encoding");
          return false;
        }
        chunked = te->chunked;
      } else if (iequals(f.name, "Connection")) {
        if (has_token(f.value, "close")) s.close_after = true;
        if (line->minor == 0 && has_token(f.value, "keep-alive")) s.close_after = false;
      }
    }
    if (head_request_ || code == 204 || code == 304) {
      s.phase = Slot::Phase::head;
    } else if (chunked) {
      s.phase = Slot::Phase::chunked;
      s.chunked.emplace();
    } else if (!lengths.empty()) {
      auto n = squall::parse_content_length(lengths);
      if (!n) {
        drop(s, kParse, "Content-Length");
        return false;
      }
      s.body_left = *n;
      s.phase = *n ? Slot::Phase::body : Slot::Phase::head;
    } else {
      s.phase = Slot::Phase::until_close;
      s.close_after = true;
    }
    return true;
  }

  // The response at the front of s.inflight is complete. False if the connection closed.
  bool complete(Slot& s, int64_t now) {
    InFlight f = s.inflight.front();
    s.inflight.pop_front();
    int64_t origin = open_loop_ ? f.intended : f.started;
    if (in_window(f.intended)) {
      latency_.record(now - origin);
      ++requests_;
      bytes_ += s.response_bytes;
      ++statuses_[s.status];
      if (s.status >= 400) error(kStatus, 1, "HTTP " + std::to_string(s.status));
    }
    if (now >= t_measure_ && now <= t_end_) ++completed_in_window_;
    bool close = s.close_after || cfg_.close;
    ++s.served;
    s.phase = Slot::Phase::head;
    s.chunked.reset();
    s.status = 0;
    s.close_after = false;
    s.response_bytes = 0;
    if (close) {
      // The server ends the connection here: requests pipelined behind this one were
      // never answered; they go again on a new connection (open loop) or are dropped.
      if (open_loop_)
        for (auto it = s.inflight.rbegin(); it != s.inflight.rend(); ++it) retry_.push_front(it->intended);
      s.inflight.clear();
      close_slot(s);
      return false;
    }
    if (usable(s)) make_available(s);
    return true;
  }

  // EOF or a socket error while reading.
  void on_closed(Slot& s, std::exception_ptr error) {
    if (s.phase == Slot::Phase::until_close && !s.inflight.empty()) {
      s.close_after = true;
      complete(s, now_ns());
      return;
    }
    std::string why = "connection closed";
    try {
      std::rethrow_exception(error);
    } catch (const squall::StreamClosedError& e) {
      why = e.what();
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (s.inflight.empty()) {
      close_slot(s);  // an idle connection the server closed: reopen it
    } else {
      drop(s, kRead, why);
    }
  }

  // Every 20 ms: request timeouts, reconnects, the end of the run.
  void housekeeping() {
    if (finished_) return;
    int64_t now = now_ns();
    for (Slot& s : slots_) {
      if (!s.inflight.empty() && s.state == Slot::State::open && now - s.inflight.front().started > timeout_ns_) {
        fail_inflight(s, kTimeout, "no response within --timeout");
        close_slot(s);
      } else if (s.state == Slot::State::down && now >= s.retry_at) {
        if (!cfg_.close && !ending(now)) {
          connect(s, now);
        } else if (cfg_.close && started_ && !s.queued && usable(s)) {
          make_available(s);
          pump(now);
        }
      }
    }
    if (started_ && now >= t_end_) {
      bool idle = retry_.empty() && (!open_loop_ || next_k_ >= k_end_);
      for (const Slot& s : slots_) idle = idle && s.inflight.empty();
      if (idle || now >= t_end_ + timeout_ns_) {
        // What is still due after the grace period: timeouts.
        int64_t left = 0;
        for (Slot& s : slots_)
          for (const InFlight& f : s.inflight) left += in_window(f.intended);
        for (int64_t t : retry_) left += in_window(t);
        if (open_loop_)
          for (int64_t k = next_k_; k < k_end_; ++k) left += in_window(intended(k));
        error(kTimeout, left, "still unanswered --timeout after the end of the run");
        finish();
        return;
      }
    } else if (!started_ && now - wall0_ > timeout_ns_ + 1'000'000'000) {
      start_schedule();  // connects that never settled: go on with those that did
    }
    loop_.call_later(std::chrono::milliseconds(20), [this] { housekeeping(); });
  }
  bool ending(int64_t now) const { return started_ && now >= t_end_; }

  void finish() {
    finished_ = true;
    wall_end_ = now_ns();
    cpu_end_ = cpu_seconds();
    for (Slot& s : slots_) {
      ++s.gen;
      s.stream.reset();
    }
    loop_.stop();
  }

  Config cfg_;
  squall::IOLoop& loop_;
  squall::TCPClient tcp_;
  std::shared_ptr<const squall::SSLContext> ssl_;
  bool open_loop_ = false;
  size_t depth_ = 1;
  bool head_request_ = false;
  std::vector<std::string> batches_;  // batches_[k] = k requests back to back
  std::vector<Slot> slots_;
  std::deque<size_t> available_;
  std::deque<int64_t> retry_;  // intended times of requests to send again (open loop)
  std::vector<squall::HeaderField> fields_;
  int timer_fd_ = -1;
  int64_t armed_for_ = 0;
  int64_t timeout_ns_ = 0;
  size_t pending_connects_ = 0;
  bool started_ = false;
  bool finished_ = false;
  int64_t t0_ = 0, t_measure_ = 0, t_end_ = 0;
  double interval_ns_ = 0;
  int64_t next_k_ = 0, k_end_ = 0;
  int64_t wall0_ = 0, wall_end_ = 0;
  double cpu0_ = 0, cpu_end_ = 0;
  // Results.
  HdrHistogram latency_;
  HdrHistogram lag_;
  HdrHistogram wake_lag_;
  int64_t requests_ = 0;
  int64_t completed_in_window_ = 0;
  int64_t bytes_ = 0;
  int64_t connections_opened_ = 0;
  std::array<int64_t, kErrorKinds> errors_{};
  std::array<std::string, kErrorKinds> first_error_;
  std::map<int, int64_t> statuses_;
};

squall::Task<void> connect_task(Runner* r, size_t id, uint64_t gen) {
  std::unique_ptr<squall::IOStream> stream;
  std::optional<std::string> failure;
  try {
    stream = co_await r->tcp_.connect(r->cfg_.host, r->cfg_.port,
                                      std::chrono::duration_cast<squall::Duration>(
                                          std::chrono::duration<double>(r->cfg_.timeout)),
                                      {}, AF_UNSPEC, r->ssl_);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  Slot& s = r->slots_[id];
  if (s.gen != gen || r->finished_) co_return;  // superseded: the stream (if any) closes here
  if (failure) {
    r->connect_failed(s, std::runtime_error(*failure));
  } else {
    r->connected(s, std::move(stream));
  }
}

squall::Task<void> read_task(Runner* r, size_t id, uint64_t gen, squall::IOStream* stream) {
  while (true) {
    std::string data;
    std::exception_ptr error;
    try {
      data = co_await stream->read_bytes(64 * 1024, /*partial=*/true);
    } catch (...) {
      error = std::current_exception();
    }
    // The slot may have dropped this connection (and destroyed `stream`) meanwhile.
    Slot& s = r->slots_[id];
    if (s.gen != gen || r->finished_) co_return;
    if (error) {
      r->on_closed(s, error);
      co_return;
    }
    if (!r->on_data(s, data)) co_return;
  }
}

void Runner::spawn_connect(Slot& s) { squall::spawn(connect_task(this, s.id, s.gen)); }
void Runner::spawn_reader(Slot& s) { squall::spawn(read_task(this, s.id, s.gen, s.stream.get())); }

std::string percentiles_json(const HdrHistogram& h) {
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"count\": %lld, \"min\": %.3f, \"mean\": %.3f, \"stdev\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
                "\"p99\": %.3f, \"p99.9\": %.3f, \"p99.99\": %.3f, \"max\": %.3f}",
                static_cast<long long>(h.total_count()), us(h.min()), h.mean() / 1000.0, h.stddev() / 1000.0,
                us(h.value_at_percentile(50)), us(h.value_at_percentile(90)), us(h.value_at_percentile(99)),
                us(h.value_at_percentile(99.9)), us(h.value_at_percentile(99.99)), us(h.max()));
  return buf;
}

void Runner::print_json() const {
  double window = std::chrono::duration<double>(std::chrono::nanoseconds(t_end_ - t_measure_)).count();
  double wall = static_cast<double>(wall_end_ - wall0_) / 1e9;
  std::string out = "{\"engine\": \"squall-load\"";
  out += ", \"url\": " + json_string(cfg_.url);
  out += ", \"scenario\": " + (cfg_.scenario.empty() ? std::string("null") : json_string(cfg_.scenario));
  out += ", \"method\": " + json_string(cfg_.method) + ", \"path\": " + json_string(cfg_.path);
  out += std::string(", \"mode\": \"") + (open_loop_ ? "open-loop" : "closed-loop") + "\"";
  char buf[512];
  if (open_loop_) {
    std::snprintf(buf, sizeof buf, ", \"offered_rate\": %.3f", cfg_.rate);
    out += buf;
  } else {
    out += ", \"offered_rate\": null";
  }
  out += std::string(", \"latency_from\": \"") +
         (open_loop_ ? "intended start (the schedule): stalls count"
                     : cfg_.close ? "connect start (the request's connection)" : "request write") +
         "\"";
  std::snprintf(buf, sizeof buf,
                ", \"connections\": %d, \"pipeline\": %zu, \"close\": %s, \"tls\": %s, \"warmup_s\": %.3f, "
                "\"duration_s\": %.3f, \"timeout_s\": %.3f",
                cfg_.connections, depth_, cfg_.close ? "true" : "false", cfg_.tls ? "true" : "false", cfg_.warmup,
                window, cfg_.timeout);
  out += buf;
  double achieved = window > 0 ? static_cast<double>(completed_in_window_) / window : 0.0;
  std::snprintf(buf, sizeof buf,
                ", \"requests\": %lld, \"completed_in_window\": %lld, \"achieved_rate\": %.3f, \"bytes\": %lld, "
                "\"connections_opened\": %lld",
                static_cast<long long>(requests_), static_cast<long long>(completed_in_window_), achieved,
                static_cast<long long>(bytes_), static_cast<long long>(connections_opened_));
  out += buf;
  out += ", \"errors\": {";
  int64_t total = 0;
  for (size_t k = 0; k < kErrorKinds; ++k) {
    out += (k ? ", \"" : "\"") + std::string(kErrorNames[k]) + "\": " + std::to_string(errors_[k]);
    total += errors_[k];
  }
  out += "}, \"errors_total\": " + std::to_string(total) + ", \"first_errors\": {";
  bool first = true;
  for (size_t k = 0; k < kErrorKinds; ++k) {
    if (first_error_[k].empty()) continue;
    out += (first ? "\"" : ", \"") + std::string(kErrorNames[k]) + "\": " + json_string(first_error_[k]);
    first = false;
  }
  out += "}, \"statuses\": {";
  first = true;
  for (const auto& [code, n] : statuses_) {
    out += (first ? "\"" : ", \"") + std::to_string(code) + "\": " + std::to_string(n);
    first = false;
  }
  out += "}, \"latency_us\": " + percentiles_json(latency_);
  out += ", \"send_lag_us\": " + (open_loop_ ? percentiles_json(lag_) : std::string("null"));
  out += ", \"timer_lateness_us\": " + (open_loop_ ? percentiles_json(wake_lag_) : std::string("null"));
  std::snprintf(buf, sizeof buf, ", \"cpu_s\": %.3f, \"wall_s\": %.3f", cpu_end_ - cpu0_, wall);
  out += buf;
  if (cfg_.histogram) {
    out += ", \"histogram_unit\": \"ns\", \"histogram\": " + json_string(latency_.serialize());
  }
  out += "}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

// "http://host:port/path" -> cfg (host, port, tls, path if none given).
bool parse_url(Config& cfg) {
  std::string_view u = cfg.url;
  if (u.starts_with("https://")) {
    cfg.tls = true;
    u.remove_prefix(8);
  } else if (u.starts_with("http://")) {
    u.remove_prefix(7);
  } else {
    return false;
  }
  size_t slash = u.find('/');
  std::string_view authority = u.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : u.substr(slash);
  cfg.port = cfg.tls ? 443 : 80;
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() == ':') {
      cfg.port = static_cast<uint16_t>(std::stoi(std::string(authority.substr(1))));
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    int port = std::stoi(std::string(authority.substr(colon + 1)));
    if (port <= 0 || port > 65535) return false;
    cfg.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) return false;
  cfg.host = std::string(host);
  if (cfg.path.empty()) cfg.path = std::string(path);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"squall-load: open-loop (--rate R) or closed-loop (--rate 0) HTTP/1.1 load, a latency per response",
               "squall-load"};
  Config cfg;
  std::string body_file, load_dir;
  bool tls_flag = false;
  app.add_option("url", cfg.url, "http://HOST:PORT[/PATH] or https://...")->required();
  app.add_option("--rate,-R", cfg.rate, "requests per second, scheduled at fixed intervals (0: closed loop, as wrk)")
      ->check(CLI::NonNegativeNumber);
  auto* conn_opt = app.add_option("--connections,-c", cfg.connections, "connections (default 64)")
                       ->check(CLI::PositiveNumber);
  app.add_option("--duration,-d", cfg.duration, "seconds recorded (default 10)")->check(CLI::PositiveNumber);
  app.add_option("--warmup,-w", cfg.warmup, "seconds run before recording (default 0)")->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", cfg.timeout, "seconds a request may wait for its response (default 10)")
      ->check(CLI::PositiveNumber);
  auto* pipe_opt = app.add_option("--pipeline", cfg.pipeline, "requests in flight per connection (default 1)")
                       ->check(CLI::Range(1, 1024));
  auto* close_opt = app.add_flag("--close", cfg.close, "a connection per request (Connection: close)");
  auto* method_opt = app.add_option("--method,-m", cfg.method, "request method (default GET)");
  auto* path_opt = app.add_option("--path", cfg.path, "request target (default: the URL's path)");
  app.add_option("--header,-H", cfg.headers, "a request header \"Name: value\" (repeatable)");
  auto* body_opt = app.add_option("--body-file", body_file, "the request body, from this file");
  app.add_option("--scenario", cfg.scenario, "a scenario of load/scenarios.py (method, path, headers, body, pipelining)");
  app.add_option("--load-dir", load_dir, "where load/ is (for --scenario; default: found from here or the binary)");
  app.add_flag("--tls", tls_flag, "TLS even for an http:// URL");
  app.add_option("--ca-file", cfg.ca_file, "CA certificates that validate the server (default: the system's)");
  app.add_flag("--insecure", cfg.insecure, "do not validate the server's certificate");
  bool no_histogram = false;
  app.add_flag("--no-histogram", no_histogram, "leave the serialised histogram out of the JSON");
  CLI11_PARSE(app, argc, argv);
  cfg.histogram = !no_histogram;
  squall::set_log_level(squall::LogLevel::none);

  if (!cfg.scenario.empty()) {
    if (method_opt->count() || path_opt->count() || body_opt->count()) {
      std::fprintf(stderr, "squall-load: --scenario defines the method, path and body\n");
      return 2;
    }
    if (!load_scenario(cfg, find_load_dir(load_dir), pipe_opt->count() > 0, close_opt->count() > 0,
                       conn_opt->count() > 0))
      return 2;
  }
  if (!body_file.empty()) {
    std::ifstream f(body_file, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "squall-load: cannot read %s\n", body_file.c_str());
      return 2;
    }
    cfg.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  try {
    if (!parse_url(cfg)) {
      std::fprintf(stderr, "squall-load: bad URL %s (http://HOST:PORT[/PATH])\n", cfg.url.c_str());
      return 2;
    }
  } catch (const std::exception&) {
    std::fprintf(stderr, "squall-load: bad port in %s\n", cfg.url.c_str());
    return 2;
  }
  cfg.tls = cfg.tls || tls_flag;
  for (const std::string& h : cfg.headers) {
    if (h.find(':') == std::string::npos || !squall::is_valid_field_value(h)) {
      std::fprintf(stderr, "squall-load: bad header %s (Name: value)\n", h.c_str());
      return 2;
    }
  }

  // Enough descriptors for the connections (and more, for --close churn).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, static_cast<rlim_t>(cfg.connections) * 2 + 256);
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  try {
    squall::IOLoop loop;
    {
      Runner runner(cfg, loop);
      runner.run();
      runner.print_json();
    }
    loop.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "squall-load: %s\n", e.what());
    return 1;
  }
  return 0;
}
