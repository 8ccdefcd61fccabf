// squall-contract-app: Squall's implementation of contract §1 (the server app) on
// Application + HTTPServer.
//
//   squall-contract-app --port N [--workers 1] [--catch-all] [--log-level info]
//                       [--idle-timeout S] [--header-timeout S] [--body-timeout S]
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
// Response formats where the contract leaves a choice:
//   /form    {"fields": {name: [values]}, "files": [{"name", "filename", "content_type", "size"}]}
//   /upload  {"bytes": N, "sha256": "<hex>"}
//   /bytes/N N bytes of "0123456789abcdef..." (application/octet-stream)
//   /stream/N N chunks "chunk <i>\n", each flushed
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
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

size_t parse_count(const std::string& digits, size_t limit) {
  if (digits.size() > 12) throw HTTPError(400, "count too large");
  size_t n = std::stoull(digits);
  if (n > limit) throw HTTPError(400, "count too large");
  return n;
}

// GET/HEAD/OPTIONS: "OK"; POST/PUT/PATCH: echo the body. Also the --catch-all handler.
class RootHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("OK");
    co_return;
  }
  Task<void> head() override { return get(); }
  Task<void> options() override { return get(); }
  Task<void> post() override {
    set_header("Content-Type", "application/octet-stream");
    write(request().body);
    co_return;
  }
  Task<void> put() override { return post(); }
  Task<void> patch() override { return post(); }
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

class PlaintextHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, World!");
    co_return;
  }
};

class JsonHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write_json(R"({"message":"Hello, World!"})");
    set_header("Content-Type", "application/json");  // the contract's exact type
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
    write(pattern(n));
    size_ = n;
    co_return;
  }

  // The same ETag as the default (the SHA-1 of the body), computed once per size: the
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

  // The first n bytes of the pattern, kept between requests (grown on demand): the body is
  // static content (nginx and h2o serve it from a file in the load comparison), so making
  // it is not the server's work per request.
  static std::string_view pattern(size_t n) {
    static constexpr char kPattern[] = "0123456789abcdef";
    thread_local std::string bytes;
    for (size_t i = bytes.size(); i < n; ++i) bytes.push_back(kPattern[i % 16]);
    return std::string_view(bytes).substr(0, n);
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
      {"/plaintext", handler<PlaintextHandler>()},
      {"/json", handler<JsonHandler>()},
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
  std::string log_level = "info";
  double idle_timeout = 0;    // seconds; 0 = the server's default (3600 s)
  double header_timeout = 0;  // 0 = none (the idle timeout bounds a head)
  double body_timeout = 0;    // 0 = none
  std::string certfile, keyfile;
  double shutdown_timeout = 10;  // seconds the requests in flight get on SIGTERM
  cli.add_option("--port", port, "TCP port on 127.0.0.1 (0: let the kernel choose)")
      ->required()
      ->check(CLI::Range(0, 65535));
  cli.add_option("--workers", workers, "pre-forked worker processes (1: no fork, 0: one per CPU)")
      ->capture_default_str();
  cli.add_flag("--catch-all", catch_all, "serve unmatched paths with the / handler instead of 404");
  cli.add_option("--log-level", log_level, "debug, info, warning, error or none")->capture_default_str();
  cli.add_option("--idle-timeout", idle_timeout, "seconds a connection may wait for a request (0: default 3600)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--header-timeout", header_timeout, "seconds from a head's first byte to its end (0: none)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--body-timeout", body_timeout, "seconds to receive a request body (0: none)")
      ->check(CLI::NonNegativeNumber);
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
    if (idle_timeout > 0) options.idle_connection_timeout = seconds(idle_timeout);
    if (header_timeout > 0) options.params.header_timeout = seconds(header_timeout);
    if (body_timeout > 0) options.params.body_timeout = seconds(body_timeout);
    squall::HTTPServer server(app, options, {}, tls);  // after the loop: destroyed before it
    server.add_sockets(std::move(sockets));

    // SIGTERM/SIGINT: stop accepting, close idle connections, let the requests in flight
    // finish within --shutdown-timeout, then return 0; a second signal stops at once.
    squall::GracefulStop stop_signals(loop, [&] { return server.shutdown(seconds(shutdown_timeout)); });
    loop.start();
    return 0;
  } catch (...) {
    squall::log(LogLevel::error, LogCategory::general, "contract app failed: {}", squall::describe_current_exception());
    return 1;
  }
}
