// HTTPServer: a TCPServer that speaks HTTP/1.x — Tornado's httpserver.HTTPServer.
//
// Each accepted connection gets an HTTPServerConnection (see http1connection.h) that
// reads requests while keep-alive holds and hands each to the delegate
// (HTTPServerConnectionDelegate::start_request; an Application implements it). The
// options carry the connection parameters (limits, timeouts, decompression), xheaders
// (trust X-Real-Ip / X-Forwarded-For / X-Scheme / X-Forwarded-Proto from a proxy, skipping
// trusted_downstream addresses), the idle timeout between requests and the protocol name.
// With an ssl_context (SSLContext::server) it serves HTTPS: TCPServer wraps each
// connection in an SSLIOStream and requests report protocol "https" (unless
// options.protocol says otherwise), as Tornado's HTTPServer(ssl_options=...). Plain HTTP
// sent to such a server is answered "400 Bad Request" in clear text and closed, as nginx
// answers "The plain HTTP request was sent to HTTPS port".
//
// Graceful shutdown (Squall's addition; nginx's SIGQUIT, Go's Server.Shutdown): see
// shutdown(). After a burst of connections ends, the memory the allocator keeps cached is
// given back to the system (see trim_memory_when_idle).
#pragma once

#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "squall/future.h"
#include "squall/http1connection.h"
#include "squall/http_delegate.h"
#include "squall/tcpserver.h"

namespace squall {

class HTTPServer : public TCPServer {
 public:
  explicit HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options = {},
                      IOStreamOptions stream_options = {}, std::shared_ptr<const SSLContext> ssl_context = nullptr);
  ~HTTPServer() override;

  // Creates the HTTPServerConnection for a new socket and runs its request loop.
  Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress address) override;

  // Closes every open connection; completes once all of them have ended. (Call stop()
  // first so that no new ones arrive.)
  Task<void> close_all_connections();

  // Graceful shutdown: stops listening (stop()), closes the idle connections at once (those
  // waiting for a request, or for the first bytes of one), and lets the requests in flight
  // finish: a response whose head is written from now on carries `Connection: close`, and
  // each connection is closed as soon as its current response has been sent (no further
  // request is read on it). At `grace` after the call whatever is still open is closed
  // (close_all_connections). Completes when no connection is left; the server may then be
  // destroyed (and the loop stopped). Calling it again while it runs is allowed: the new
  // call waits for the same end, bounded by its own grace.
  Task<void> shutdown(Duration grace);
  bool shutting_down() const { return registry_->draining; }

  size_t connection_count() const { return registry_->connections.size(); }
  // Connections with a request in flight (from its first byte until its response is sent).
  size_t busy_connection_count() const;
  const HTTPServerOptions& options() const { return options_; }

  // Memory after a burst: `delay` after a connection ends (at most one check per delay),
  // if the C allocator holds at least `min_free_bytes` free (mallinfo2) together with the
  // blocks the per-thread pool keeps (small_pool.h), both are returned to the system
  // (malloc_trim). A burst of large responses otherwise leaves the heap at its peak. On by
  // default (1 s, 1 MiB); std::nullopt turns it off.
  void trim_memory_when_idle(std::optional<Duration> delay, size_t min_free_bytes = kDefaultTrimFreeBytes);
  static constexpr size_t kDefaultTrimFreeBytes = 1u << 20;

 private:
  class ConnectionTracker;
  class Exchange;
  struct Registry {
    std::unordered_set<ConnectionTracker*> connections;
    bool draining = false;
    std::optional<Future<void>> drained;  // completes once `connections` is empty while draining
    // Memory trimming after a burst.
    std::optional<Duration> trim_delay;
    size_t trim_min_free_bytes = kDefaultTrimFreeBytes;
    TimeoutHandle trim_timer;
    IOLoop* loop = nullptr;
    void add(ConnectionTracker* tracker);
    void remove(ConnectionTracker* tracker);
  };

  HTTPServerConnectionDelegate& delegate_;
  HTTPServerOptions options_;
  // Shared with the connection coroutines, which may outlive the server until the loop
  // closes.
  std::shared_ptr<Registry> registry_;
};

}  // namespace squall
