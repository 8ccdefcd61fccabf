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
//
// Idle connections are compacted (Squall's addition, as nginx keeps an idle connection in
// a small record): a sweep every options.idle_compaction_period finds the plain
// connections that have waited for their next request since the previous sweep, holding
// no byte in or out, and swaps each one's stream, HTTP1Connection, HTTPServerConnection
// and request-loop coroutines for an 80-byte record (detail/idle_records.h) on which the
// loop waits. When bytes arrive the connection is rebuilt and served as before (a new
// HTTPServerConnection object: the delegate's on_close is called once, for the last);
// the idle timeout, shutdown() and close_all_connections() close compacted connections
// as they close the others (with on_close). TLS connections are not compacted: OpenSSL's
// state per connection dwarfs what compaction saves.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "squall/detail/idle_records.h"
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

  // Open connections, compacted ones included.
  size_t connection_count() const { return registry_->count + compacted_connection_count(); }
  // Connections with a request in flight (from its first byte until its response is sent).
  size_t busy_connection_count() const;
  // Idle connections held as compact records now, and how many compactions there were.
  size_t compacted_connection_count() const { return registry_->idle ? registry_->idle->size() : 0; }
  uint64_t compactions() const { return registry_->compactions; }
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
  struct Registry final : detail::IdleRecords::Owner {
    HTTPServer* server = nullptr;  // null once the server is destroyed
    // The connections with their objects (a request loop running or waiting), linked
    // through their trackers: joining and leaving cost no allocation and no hashing, which
    // a set paid on every connection (issue 18). Newest first.
    ConnectionTracker* first = nullptr;
    size_t count = 0;
    bool draining = false;
    std::optional<Future<void>> drained;  // completes once no connection is left while draining
    // Memory trimming after a burst.
    std::optional<Duration> trim_delay;
    size_t trim_min_free_bytes = kDefaultTrimFreeBytes;
    TimeoutHandle trim_timer;
    IOLoop* loop = nullptr;
    // Compaction of idle connections: the records (made with the first one), the sweep.
    std::optional<Duration> compaction_period;  // null: none (TLS, or turned off)
    std::optional<Duration> idle_timeout;
    std::unique_ptr<detail::IdleRecords> idle;
    TimeoutHandle sweep_timer;
    TimePoint last_sweep{};
    uint64_t compactions = 0;

    void add(ConnectionTracker* tracker);
    void unlink(ConnectionTracker* tracker);  // leaves the list (compaction)
    void remove(ConnectionTracker* tracker);  // leaves it as an ended connection
    // A connection ended (its tracker left, or its record was closed).
    void connection_ended();
    void schedule_trim(Duration delay);
    void arm_sweep();
    void sweep();
    void compact(ConnectionTracker& tracker);
    void resume(int fd, SocketAddress peer, bool fin_received) override;
    void close_compacted(int fd, SocketAddress peer, bool timed_out) override;
    size_t close_all_compacted() { return idle ? idle->close_all() : 0; }
  };

  // Closes the connections in the registry one by one until none is left.
  static Task<void> close_tracked(std::shared_ptr<Registry> registry);
  // A stream for a compacted connection's socket (which it takes over from the record's
  // registration), or null when that failed (logged; the socket is closed).
  std::unique_ptr<IOStream> take_compacted_socket(int fd, const SocketAddress& peer, bool fin_received = false);
  // A compacted connection's bytes arrived: rebuild it and run its request loop.
  void resume_connection(int fd, SocketAddress peer, bool fin_received);
  // Closes a compacted connection, telling the delegate (on_close) as for any other.
  void close_compacted_connection(int fd, SocketAddress peer);

  HTTPServerConnectionDelegate& delegate_;
  HTTPServerOptions options_;
  HTTP1Connection::SharedParameters params_;  // options_.params, one copy for every connection
  // Shared with the connection coroutines, which may outlive the server until the loop
  // closes.
  std::shared_ptr<Registry> registry_;
};

}  // namespace squall
