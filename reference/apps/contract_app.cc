// squall-contract-app: Squall's implementation of contract §1 (the server app) on
// Application + HTTPServer.
//
//   squall-contract-app --port N [--workers 1] [--catch-all] [--log-level info]
//                       [--idle-timeout 75] [--header-timeout 60] [--body-timeout 60]
//                       [--send-timeout 60] [--lenient]
//                       [--certfile PEM --keyfile PEM] [--shutdown-timeout S]
//
// Binds 127.0.0.1 only and prints "port=NNNNN" on stdout once listening (--port 0 lets
// the kernel choose). SIGTERM or SIGINT stops it gracefully with exit status 0: it stops
// accepting, closes idle connections, lets the requests in flight finish (answered with
// `Connection: close`) for up to --shutdown-timeout seconds (default 10), then exits; a
// second signal exits at once (a signalfd on the loop; with --workers N != 1 the pre-fork
// supervisor forwards the signals to the workers and waits for them). With --catch-all,
// paths that match no rule are served by the "/" handler. With --certfile (and --keyfile,
// unless the key is in the certificate file) it serves HTTPS only (TLS 1.2+, ALPN
// http/1.1); the files are checked before it listens.
//
// Timeouts (seconds, 0 = none) default to nginx's: a head must arrive within 60 s of its
// first byte, a body may pause at most 60 s, queued output must make progress within
// 60 s, and a connection may idle 75 s between requests; each logs a line when it fires.
//
// Memory per connection stays bounded: bodies of handlers that take them whole are
// limited to 1 MiB (413 beyond, unread), the echo of / keeps 64 KiB in memory and the rest
// in an unnamed temporary file, and large answers (/bytes/N, the echo) are written in
// pieces (the echo's 64 KiB, /bytes/N's 256 KiB), each awaited, so that at most the piece
// and the connection's 256 KiB output mark wait for a slow reader.
//
// Response formats where the contract leaves a choice:
//   /form    {"fields": {name: [values]}, "files": [{"name", "filename", "content_type", "size"}]}
//   /upload  {"bytes": N, "sha256": "<hex>"}
//   /bytes/N N bytes of "0123456789abcdef..." (application/octet-stream; an ETag up to
//            64 KiB, none for larger bodies, which are streamed with Content-Length)
//   /stream/N N chunks "chunk <i>\n", each flushed
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "squall/stop_signals.h"
#include "squall/httpserver.h"
#include "squall/ioloop.h"
#include "squall/log.h"
#include "squall/netutil.h"
#include "squall/process.h"
#include "squall/ssl_context.h"
#include "squall/task.h"
#include "squall/web.h"
#include "hello_handlers.h"

namespace {

using squall::HTTPError;
using squall::Json;
using squall::LogCategory;
using squall::LogLevel;
using squall::RequestHandler;
using squall::Task;

constexpr size_t kMaxBytes = 64u << 20;    // /bytes/N limit
constexpr size_t kMaxChunks = 100000;      // /stream/N limit
constexpr long kMaxSlowMs = 60000;         // /slow/N limit
constexpr size_t kPiece = 64u << 10;       // large answers are written (and awaited) in pieces of this size
// /bytes/N's pieces: as large as the connection's output high-water mark (256 KiB). With
// 64 KiB pieces each went to the socket in its own sendmsg as soon as it was written (16
// per MiB), and the server's kernel time per 1 MiB answer was ~1.4 x what 4 pieces cost;
// a slow reader still holds at most the mark plus one piece.
constexpr size_t kDownloadPiece = 256u << 10;
constexpr size_t kSpoolMemory = 64u << 10;  // an echoed body beyond this goes to a temporary file

size_t parse_count(const std::string& digits, size_t limit) {
  if (digits.size() > 12) throw HTTPError(400, "count too large");
  size_t n = std::stoull(digits);
  if (n > limit) throw HTTPError(400, "count too large");
  return n;
}

// An echoed body: the first kSpoolMemory bytes in memory, the rest in an unnamed
// temporary file (nginx's client_body_buffer_size and client_body_temp_path), so that a
// large body costs disk and page cache, not the process's memory.
class Spool {
 public:
  Spool() = default;
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool() {
    if (fd_ >= 0) ::close(fd_);
  }

  uint64_t size() const { return memory_.size() + file_size_; }

  void append(std::string_view data) {
    if (fd_ < 0 && memory_.size() + data.size() <= kSpoolMemory) {
      memory_.append(data);
      return;
    }
    if (fd_ < 0) open_file();
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(file_size_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::system_error(errno, std::system_category(), "spool write");
      file_size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Up to max bytes from offset (within the memory part or within the file part).
  std::string read(uint64_t offset, size_t max) const {
    if (offset < memory_.size()) return memory_.substr(static_cast<size_t>(offset), max);
    uint64_t at = offset - memory_.size();
    std::string out(static_cast<size_t>(std::min<uint64_t>(max, file_size_ - at)), '\0');
    size_t got = 0;
    while (got < out.size()) {
      ssize_t n = ::pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(at + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::system_error(errno, std::system_category(), "spool read");
      got += static_cast<size_t>(n);
    }
    return out;
  }

 private:
  void open_file() {
    const char* dir = std::getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    fd_ = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      // No O_TMPFILE on this file system: a named file, unlinked at once.
      std::string path = std::string(dir) + "/squall-spool-XXXXXX";
      fd_ = ::mkostemp(path.data(), O_CLOEXEC);
      if (fd_ < 0) throw std::system_error(errno, std::system_category(), "spool file");
      ::unlink(path.c_str());
    }
  }

  std::string memory_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
};

// Writes `size` bytes got from piece(offset, max_length) — at least one byte, at most
// max_length — in pieces of up to piece_size, each flushed and awaited (the flow control of a
// large answer), with the Content-Length set first. A client that goes away (or is
// dropped by the send timeout) ends it quietly, as in Tornado's StaticFileHandler.
template <class Piece>
Task<void> write_in_pieces(RequestHandler& handler, uint64_t size, size_t piece_size, Piece piece) {
  handler.set_header("Content-Length", static_cast<int64_t>(size));
  try {
    for (uint64_t offset = 0; offset < size;) {
      // A string or a view.
      auto bytes = piece(offset, static_cast<size_t>(std::min<uint64_t>(piece_size, size - offset)));
      if (bytes.empty()) throw std::logic_error("write_in_pieces: no bytes at an offset below the size");
      handler.write(bytes);
      offset += bytes.size();
      co_await handler.flush();
    }
  } catch (const squall::StreamClosedError&) {
  }
}

// GET/HEAD/OPTIONS: "OK"; POST/PUT/PATCH: echo the body. Also the --catch-all handler.
// An echoed body streams in (so the buffered-body limit does not apply, max_body_size
// does) and is kept in a Spool. The other methods take their (rare) bodies whole and
// answer as soon as the request is complete, as before.
class RootHandler : public RequestHandler {
 public:
  bool stream_request_body() const override { return echoes(); }
  Task<void> data_received(std::string chunk) override {
    spool_.append(chunk);
    co_return;
  }
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("OK");
    co_return;
  }
  Task<void> head() override { return get(); }
  Task<void> options() override { return get(); }
  Task<void> post() override {
    set_header("Content-Type", "application/octet-stream");
    if (spool_.size() <= kPiece) {
      write(spool_.read(0, kPiece));
      co_return;
    }
    co_await write_in_pieces(*this, spool_.size(), kPiece,
                             [this](uint64_t offset, size_t n) { return spool_.read(offset, n); });
  }
  Task<void> put() override { return post(); }
  Task<void> patch() override { return post(); }

 private:
  bool echoes() const {
    const std::string& m = request().method;
    return m == "POST" || m == "PUT" || m == "PATCH";
  }
  Spool spool_;
};

// OPTIONS * (asterisk-form).
class AsteriskHandler : public RequestHandler {
 public:
  Task<void> options() override {
    set_header("Content-Type", "text/plain");
    write("OK");
    co_return;
  }
};

// Handlers that answer every method, whatever it is, from prepare().
class AnyMethodHandler : public RequestHandler {
 public:
  bool supports_method(std::string_view) const override { return true; }
};

class EchoHeadersHandler : public AnyMethodHandler {
 public:
  Task<void> prepare() override {
    set_header("Content-Type", "text/plain");
    std::string out;
    for (const squall::HeaderField& f : request().headers) {
      out.append(f.name).append(": ").append(f.value).push_back('\n');
    }
    finish(out);
    co_return;
  }
};

class CookieEchoHandler : public AnyMethodHandler {
 public:
  Task<void> prepare() override {
    set_header("Content-Type", "text/plain");
    std::string out;
    for (const auto& [name, value] : request().cookies()) out += name + "=" + value + "\n";
    finish(out);
    co_return;
  }
};


Json arguments_json(const squall::Arguments& args) {
  Json out = Json::object();
  for (const auto& e : args) {
    Json values = Json::array();
    for (const auto& v : e.values) values.push_back(v);
    out.set(e.name, std::move(values));
  }
  return out;
}

class ArgsHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(arguments_json(request().arguments));
    co_return;
  }
  Task<void> post() override { return get(); }
};

class FormHandler : public RequestHandler {
 public:
  Task<void> post() override {
    Json files = Json::array();
    for (const auto& e : request().files) {
      for (const squall::HTTPFile& f : e.values) {
        files.push_back(Json::object({{"name", e.name},
                                      {"filename", f.filename},
                                      {"content_type", f.content_type},
                                      {"size", static_cast<int64_t>(f.body.size())}}));
      }
    }
    write(Json::object({{"fields", arguments_json(request().body_arguments)}, {"files", std::move(files)}}));
    co_return;
  }
};

class PathHandler : public RequestHandler {
 public:
  Task<void> get() override {
    Json out = Json::array();
    for (const auto& a : path_args()) out.push_back(a);
    write(out);
    co_return;
  }
};

class NamedHandler : public RequestHandler {
 public:
  Task<void> get() override {
    Json out = Json::object();
    for (const auto& [k, v] : path_kwargs()) out.set(k, v);
    write(out);
    co_return;
  }
};

class StatusHandler : public RequestHandler {
 public:
  Task<void> get() override {
    int code = std::stoi(path_args()[0]);
    if (code < 100) throw HTTPError(400, "status below 100");
    set_status(code);
    co_return;
  }
};

class BytesHandler : public RequestHandler {
 public:
  Task<void> get() override {
    size_t n = parse_count(path_args()[0], kMaxBytes);
    set_header("Content-Type", "application/octet-stream");
    if (n <= kPiece) {
      write(pattern().substr(0, n));
      size_ = n;
      co_return;
    }
    // Larger bodies go out as the client takes them, never whole in memory; the pieces
    // start at multiples of kDownloadPiece (a multiple of 16), so each is the pattern's prefix.
    // A flushed answer gets no ETag (as Tornado).
    co_await write_in_pieces(*this, n, kDownloadPiece,
                             [](uint64_t, size_t length) { return pattern().substr(0, length); });
  }

  // The same ETag as the default (a hash of the body), computed once per size: the
  // body is static content, and Tornado's StaticFileHandler caches its hashes likewise.
  std::optional<std::string> compute_etag() const override {
    if (!size_) return RequestHandler::compute_etag();
    thread_local std::unordered_map<size_t, std::optional<std::string>> etags;
    auto it = etags.find(*size_);
    if (it != etags.end()) return it->second;
    if (etags.size() >= 64) etags.clear();  // bounded: sizes are the client's choice
    std::optional<std::string> etag = RequestHandler::compute_etag();
    etags.emplace(*size_, etag);
    return etag;
  }

 private:
  std::optional<size_t> size_;

  // kDownloadPiece bytes of the pattern, made once: the body is static content (nginx and h2o
  // serve it from a file in the load comparison), so making it is not the server's work
  // per request.
  static std::string_view pattern() {
    static const std::string bytes = [] {
      static constexpr char kPattern[] = "0123456789abcdef";
      std::string out(kDownloadPiece, '\0');
      for (size_t i = 0; i < kDownloadPiece; ++i) out[i] = kPattern[i % 16];
      return out;
    }();
    return bytes;
  }
};

class StreamHandler : public RequestHandler {
 public:
  Task<void> get() override {
    size_t n = parse_count(path_args()[0], kMaxChunks);
    set_header("Content-Type", "text/plain");
    for (size_t i = 0; i < n; ++i) {
      write("chunk " + std::to_string(i) + "\n");
      co_await flush();
    }
  }
};

class GzipHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    std::string body;
    for (int i = 0; i < 200; ++i) body += "Squall compresses this line when the client accepts gzip.\n";
    write(body);
    co_return;
  }
};

class RedirectHandler : public RequestHandler {
 public:
  Task<void> get() override {
    size_t n = parse_count(path_args()[0], 1000000);
    if (n == 0) {
      set_header("Content-Type", "text/plain");
      write("OK");
    } else {
      redirect("/redirect/" + std::to_string(n - 1));
    }
    co_return;
  }
};

class SlowHandler : public RequestHandler {
 public:
  Task<void> get() override {
    long ms = static_cast<long>(parse_count(path_args()[0], kMaxSlowMs));
    co_await squall::sleep(std::chrono::milliseconds(ms));
    set_header("Content-Type", "text/plain");
    write("OK");
  }
};

class ErrorHandler : public RequestHandler {
 public:
  Task<void> get() override {
    throw std::runtime_error("intentional failure in /error (this detail must not reach the client)");
    co_return;
  }
};

class HTTPErrorHandler : public RequestHandler {
 public:
  Task<void> get() override {
    int code = std::stoi(path_args()[0]);
    if (code < 100) throw HTTPError(400, "status below 100");
    throw HTTPError(code);
    co_return;
  }
};

// PUT /upload: the body arrives piece by piece; only the count and the running SHA-256
// are kept.
class UploadHandler : public RequestHandler {
 public:
  UploadHandler() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::runtime_error("EVP init failed");
  }
  ~UploadHandler() override { EVP_MD_CTX_free(ctx_); }

  bool stream_request_body() const override { return true; }
  Task<void> data_received(std::string chunk) override {
    bytes_ += chunk.size();
    EVP_DigestUpdate(ctx_, chunk.data(), chunk.size());
    co_return;
  }
  Task<void> put() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_, digest, &length);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 15]);
    }
    write(Json::object({{"bytes", static_cast<int64_t>(bytes_)}, {"sha256", hex}}));
    co_return;
  }

 private:
  EVP_MD_CTX* ctx_;
  uint64_t bytes_ = 0;
};

std::vector<squall::URLSpec> contract_routes() {
  using squall::handler;
  return {
      {"/", handler<RootHandler>()},
      {R"(\*)", handler<AsteriskHandler>()},
      {"/echo", handler<EchoHeadersHandler>()},
      {"/cookie", handler<CookieEchoHandler>()},
      {"/plaintext", handler<squall::hello::PlaintextHandler>()},
      {"/json", handler<squall::hello::JsonHandler>()},
      {"/args", handler<ArgsHandler>()},
      {"/form", handler<FormHandler>()},
      {"/path/([^/]+)/([0-9]+)", handler<PathHandler>()},
      {"/named/(?P<first>[^/]+)/(?P<second>[^/]+)", handler<NamedHandler>()},
      {"/status/([0-9]{3})", handler<StatusHandler>()},
      {"/bytes/([0-9]+)", handler<BytesHandler>()},
      {"/stream/([0-9]+)", handler<StreamHandler>()},
      {"/gzip", handler<GzipHandler>()},
      {"/redirect/([0-9]+)", handler<RedirectHandler>()},
      {"/slow/([0-9]+)", handler<SlowHandler>()},
      {"/error", handler<ErrorHandler>()},
      {"/httperror/([0-9]{3})", handler<HTTPErrorHandler>()},
      {"/upload", handler<UploadHandler>()},
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Squall contract server app (contract 1)"};
  int port = -1;
  int workers = 1;
  bool catch_all = false;
  bool lenient = false;
  std::string log_level = "info";
  // Seconds; 0 = none (Tornado's lenient behaviour). The defaults are nginx's.
  double idle_timeout = 75;
  double header_timeout = 60;
  double body_timeout = 60;
  double send_timeout = 60;
  std::string certfile, keyfile;
  double shutdown_timeout = 10;  // seconds the requests in flight get on SIGTERM
  cli.add_option("--port", port, "TCP port on 127.0.0.1 (0: let the kernel choose)")
      ->required()
      ->check(CLI::Range(0, 65535));
  cli.add_option("--workers", workers, "pre-forked worker processes (1: no fork, 0: one per CPU)")
      ->capture_default_str();
  cli.add_flag("--catch-all", catch_all, "serve unmatched paths with the / handler instead of 404");
  cli.add_flag("--lenient", lenient,
               "take the lenient side where RFC 9112 allows it (Tornado 6.2's parsing: bare LF, "
               "Content-Length lists, unknown expectations ignored...); default strict");
  cli.add_option("--log-level", log_level, "debug, info, warning, error or none")->capture_default_str();
  cli.add_option("--idle-timeout", idle_timeout, "seconds a connection may wait for a request (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--header-timeout", header_timeout,
                 "seconds from a head's first byte to its end (0: none; the idle timeout then bounds it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--body-timeout", body_timeout, "seconds a request body may pause (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--send-timeout", send_timeout,
                 "seconds queued output may wait for a client that stopped reading (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--shutdown-timeout", shutdown_timeout, "seconds in-flight requests get to finish on SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto* cert_option = cli.add_option("--certfile", certfile, "PEM certificate (then its chain): serve HTTPS")
                          ->check(CLI::ExistingFile);
  cli.add_option("--keyfile", keyfile, "PEM private key (default: in --certfile)")
      ->check(CLI::ExistingFile)
      ->needs(cert_option);
  CLI11_PARSE(cli, argc, argv);

  try {
    squall::set_log_level(squall::parse_log_level(log_level));

    squall::block_stop_signals();  // before fork_processes: workers inherit the mask

    squall::ApplicationSettings settings;
    settings.compress_response = true;
    if (catch_all) settings.default_handler = squall::handler<RootHandler>();
    squall::Application app(contract_routes(), settings);  // before the loop: outlives it
    std::shared_ptr<const squall::SSLContext> tls;
    if (!certfile.empty()) {
      squall::SSLOptions tls_options;
      tls_options.certfile = certfile;
      tls_options.keyfile = keyfile;
      tls = squall::SSLContext::server(std::move(tls_options));  // bad files fail here, before listening
    }

    std::vector<int> sockets = squall::bind_sockets(static_cast<uint16_t>(port), "127.0.0.1");
    squall::log(LogLevel::info, LogCategory::general, "listening on {}{}", squall::socket_address(sockets[0]).to_string(),
                tls ? " (HTTPS)" : "");
    std::printf("port=%u\n", static_cast<unsigned>(squall::socket_port(sockets[0])));
    std::fflush(stdout);
    if (workers != 1) {  // returns in the workers only; the supervisor outwaits their shutdown
      squall::fork_processes(workers, 100, std::chrono::milliseconds(static_cast<long>(shutdown_timeout * 1000)) +
                                               std::chrono::seconds(5));
    }

    squall::IOLoop loop;
    auto seconds = [](double s) {
      return std::chrono::duration_cast<squall::Duration>(std::chrono::duration<double>(s));
    };
    squall::HTTPServerOptions options;
    auto timeout = [&](double s) { return s > 0 ? std::optional<squall::Duration>(seconds(s)) : std::nullopt; };
    options.idle_connection_timeout = seconds(idle_timeout);  // zero: none
    options.params.header_timeout = timeout(header_timeout);
    options.params.body_timeout = timeout(body_timeout);
    options.params.send_timeout = timeout(send_timeout);
    options.params.max_buffered_body_size = 1u << 20;  // nginx's client_max_body_size (/ streams its echo)
    // Strict answers name the problem in a one-line body; --lenient answers as Tornado 6.2
    // does (an empty body).
    options.params.explain_errors = !lenient;
    if (lenient) options.params.head_limits.policy = squall::ParsePolicy::lenient();
    squall::HTTPServer server(app, options, {}, tls);  // after the loop: destroyed before it
    server.add_sockets(std::move(sockets));

    // SIGTERM/SIGINT: stop accepting, close idle connections, let the requests in flight
    // finish within --shutdown-timeout, then return 0; a second signal stops at once.
    squall::GracefulStop stop_signals(loop, [&] { return server.shutdown(seconds(shutdown_timeout)); });
    loop.start();
    return 0;
  } catch (...) {
    return squall::log_program_failure("contract app");
  }
}
