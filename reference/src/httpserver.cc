// HTTPServer (see squall/httpserver.h).
#include "squall/httpserver.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "squall/detail/hot_path.h"
#include "squall/detail/small_pool.h"
#include "squall/log.h"
#include "squall/ssl_iostream.h"

namespace squall {

namespace {

// What a plain-HTTP request on the HTTPS port gets (nginx answers the same status with
// "The plain HTTP request was sent to HTTPS port"). Written in clear by the SSLIOStream.
constexpr std::string_view kPlainHttpOnTlsPort =
    "HTTP/1.1 400 Bad Request\r\n"
    "Server: Squall\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 46\r\n"
    "Connection: close\r\n"
    "\r\n"
    "The plain HTTP request was sent to HTTPS port\n";
static_assert(kPlainHttpOnTlsPort.size() - (kPlainHttpOnTlsPort.find("\r\n\r\n") + 4) == 46);

// A request that arrives on a connection the server is closing (draining): not handled.
class Ignored final : public HTTPMessageDelegate, public detail::PoolAllocated {
 public:
  FlowControl data_received(std::string) override { return std::nullopt; }
  void finish() override {}
  void on_connection_close() override {}
};

}  // namespace

// One per connection, holding it, owned by its request loop (HTTPServerConnection::serve
// with an owned delegate): sits between the connection and the application's delegate to
// know whether a request is in flight, which a graceful shutdown needs, and gives every
// request of the connection its writer. In the registry from its construction to its
// destruction (or compaction).
class HTTPServer::ConnectionTracker final : public HTTPServerConnectionDelegate, public detail::PoolAllocated {
 public:
  ConnectionTracker(std::shared_ptr<Registry> registry, HTTPServerConnectionDelegate& inner,
                    std::unique_ptr<IOStream> stream, const SocketAddress& address, const HTTPServerOptions& options,
                    HTTP1Connection::SharedParameters params)
      : registry_(std::move(registry)),
        inner_(inner),
        connection_(std::move(stream), address, options, std::move(params)),
        writer_(*registry_, connection_.connection()) {
    registry_->add(this);
  }
  SQUALL_HOT ~ConnectionTracker() override {
    alive_.reset();
    if (!compacted_) registry_->remove(this);
  }

  // The tracker's place in the registry's list (Registry::add, remove).
  ConnectionTracker* prev = nullptr;
  ConnectionTracker* next = nullptr;

  std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection& server_conn,
                                                     HTTPConnection& request_conn) override;
  // The request that start_request gave the application has ended: its response was sent
  // (or the connection closed first). Requests ignored while draining were never busy.
  SQUALL_HOT void request_ended(HTTPServerConnection& server_conn) override {
    if (!busy_) return;
    busy_ = false;
    inner_.request_ended(server_conn);
    if (registry_->draining) close_when_flushed();
  }
  SQUALL_HOT void on_close(HTTPServerConnection& server_conn) override { inner_.on_close(server_conn); }

  bool busy() const { return busy_; }
  HTTPServerConnection& connection() { return connection_; }

  // Whether the connection may be compacted now: waiting for a request, holding nothing,
  // since `since` at the latest.
  bool compactable_since(TimePoint since) const {
    return !busy_ && !closing_ && !compacted_ && connection_.idle() && connection_.idle_since() <= since &&
           detail::IdleRecords::can_hold(connection_.context().address);
  }
  // The connection now lives on as a record: it leaves the registry (without counting as
  // ended); the request loop ends quietly.
  void compacted() {
    compacted_ = true;
    registry_->unlink(this);
  }

  // Closes the connection once what was written to it has gone out: on the next loop
  // iteration (pipelined answers collected for one write are flushed by then), after an
  // empty write completes if the stream still has bytes queued. Bounded by the shutdown's
  // grace, which closes whatever is left.
  void close_when_flushed() {
    if (closing_) return;
    closing_ = true;
    if (!alive_) alive_ = std::make_shared<ConnectionTracker*>(this);
    std::weak_ptr<ConnectionTracker*> weak = alive_;
    IOLoop::current().add_callback([weak] {
      auto alive = weak.lock();
      if (!alive) return;
      ConnectionTracker& self = **alive;
      IOStream& stream = self.connection_.stream();
      if (stream.closed() || !stream.writing()) {
        self.connection_.close();
        return;
      }
      stream.write(std::string_view()).add_done_callback([weak](Future<void>& flushed) {
        flushed.mark_retrieved();
        if (auto still = weak.lock()) (*still)->connection_.close();
      });
    });
  }

 private:
  // What the application writes each request's response through (one per connection,
  // reused by every request): passes the writes to the connection, and while the server
  // drains gives a response head `Connection: close`. The calls name HTTP1Connection's
  // functions: direct calls, where a virtual one through HTTPConnection had the compiler
  // guess at a chain of writers first.
  class Writer final : public HTTPConnection {
   public:
    Writer(const Registry& registry, HTTP1Connection& connection) : registry_(registry), connection_(connection) {}
    SQUALL_HOT Future<void> write_headers(const ResponseStartLine& line, HTTPHeaders& headers,
                                          std::string_view chunk) override {
      if (registry_.draining) [[unlikely]] return write_closing_headers(line, headers, chunk);
      return connection_.HTTP1Connection::write_headers(line, headers, chunk);
    }
    Future<void> write_headers(const RequestStartLine& line, HTTPHeaders& headers, std::string_view chunk) override {
      return connection_.HTTP1Connection::write_headers(line, headers, chunk);
    }
    Future<void> write(std::string_view chunk) override { return connection_.HTTP1Connection::write(chunk); }
    SQUALL_HOT void finish() override { connection_.HTTP1Connection::finish(); }

   private:
    // Out of line, so that the usual path above keeps no registers across a call.
    [[gnu::noinline]] Future<void> write_closing_headers(const ResponseStartLine& line, HTTPHeaders& headers,
                                                         std::string_view chunk) {
      // RFC 9112 §9.6: the server announces the close in the response it closes after.
      headers.set("Connection", "close");
      return connection_.HTTP1Connection::write_headers(line, headers, chunk);
    }

    const Registry& registry_;
    HTTP1Connection& connection_;
  };

  std::shared_ptr<Registry> registry_;
  HTTPServerConnectionDelegate& inner_;
  HTTPServerConnection connection_;
  Writer writer_;
  bool busy_ = false;
  bool closing_ = false;
  bool compacted_ = false;
  // Lets callbacks queued on the loop notice that the connection is gone (made on first use).
  std::shared_ptr<ConnectionTracker*> alive_;
};

SQUALL_HOT
std::unique_ptr<HTTPMessageDelegate> HTTPServer::ConnectionTracker::start_request(HTTPServerConnection& server_conn,
                                                                                 HTTPConnection&) {
  if (registry_->draining && closing_) {
    // A request pipelined behind the one answered with `Connection: close` (or arriving
    // on a connection being closed): RFC 9112 §9.6, not processed.
    return std::make_unique<Ignored>();
  }
  // The application answers through this connection's writer; the request is busy once it
  // has its delegate (request_ended follows then).
  std::unique_ptr<HTTPMessageDelegate> message = inner_.start_request(server_conn, writer_);
  busy_ = true;
  return message;
}

// ---- the registry ---------------------------------------------------------------------------

void HTTPServer::Registry::add(ConnectionTracker* tracker) {
  tracker->next = first;
  if (first != nullptr) first->prev = tracker;
  first = tracker;
  ++count;
  arm_sweep();
}

void HTTPServer::Registry::unlink(ConnectionTracker* tracker) {
  (tracker->prev != nullptr ? tracker->prev->next : first) = tracker->next;
  if (tracker->next != nullptr) tracker->next->prev = tracker->prev;
  tracker->prev = tracker->next = nullptr;
  --count;
}

void HTTPServer::Registry::remove(ConnectionTracker* tracker) {
  unlink(tracker);
  connection_ended();
}

void HTTPServer::Registry::connection_ended() {
  if (count == 0 && (!idle || idle->size() == 0) && draining && drained && !drained->done()) {
    drained->set_result();
  }
  if (trim_delay && !trim_timer) schedule_trim(*trim_delay);
}

void HTTPServer::Registry::schedule_trim(Duration delay) {
  if (loop == nullptr) return;
  loop->remove_timeout(trim_timer);
  // The registry outlives the timer (~HTTPServer removes it, and a closed loop runs no
  // timers).
  trim_timer = loop->call_later(delay, [this] {
    trim_timer = {};
    // Free memory is what malloc holds free and what the block pool keeps cached: after
    // a burst most of it can be pool blocks, which malloc counts as in use.
    struct mallinfo2 info = mallinfo2();
    if (info.fordblks + detail::pool_cached_bytes() < trim_min_free_bytes) return;
    detail::pool_trim();
    malloc_trim(0);
  });
}

// ---- compaction of idle connections -------------------------------------------------------

namespace {

// After a sweep compacted connections, the memory they held is given back this soon (their
// request loops unwind within a few loop turns).
constexpr Duration kTrimAfterCompaction = std::chrono::milliseconds(50);

}  // namespace

void HTTPServer::Registry::arm_sweep() {
  if (sweep_timer || !compaction_period || loop == nullptr || server == nullptr) return;
  last_sweep = loop->time();
  // One timer for the whole server, only while it has connections with their objects;
  // the registry outlives it (~HTTPServer removes it).
  sweep_timer = loop->call_later(*compaction_period, [this] { sweep(); });
}

void HTTPServer::Registry::sweep() {
  sweep_timer = {};
  const TimePoint since = last_sweep;
  if (!draining) {
    std::vector<ConnectionTracker*> idle_ones;
    for (ConnectionTracker* tracker = first; tracker != nullptr; tracker = tracker->next) {
      if (tracker->compactable_since(since)) idle_ones.push_back(tracker);
    }
    // Oldest first: the records' list stays in idle order without walking.
    std::sort(idle_ones.begin(), idle_ones.end(), [](ConnectionTracker* a, ConnectionTracker* b) {
      return a->connection().idle_since() < b->connection().idle_since();
    });
    for (ConnectionTracker* tracker : idle_ones) compact(*tracker);
    if (!idle_ones.empty() && trim_delay) schedule_trim(kTrimAfterCompaction);
  }
  if (count != 0) arm_sweep();
}

void HTTPServer::Registry::compact(ConnectionTracker& tracker) {
  if (!idle) idle = std::make_unique<detail::IdleRecords>(*loop, *this, idle_timeout);
  HTTPServerConnection& connection = tracker.connection();
  idle->add(connection.context().address, connection.idle_since(),
            [&connection](IOLoop::FdHandler& record) { return connection.hand_over_socket(record); });
  tracker.compacted();
  ++compactions;
}

void HTTPServer::Registry::resume(int fd, SocketAddress peer, bool fin_received) {
  if (server != nullptr) {
    server->resume_connection(fd, std::move(peer), fin_received);
    return;
  }
  loop->remove_handler(fd);
  ::close(fd);
}

void HTTPServer::Registry::close_compacted(int fd, SocketAddress peer, bool timed_out) {
  if (timed_out) {
    log(LogLevel::info, LogCategory::general, "Idle timeout ({:g} s): closing the connection from {}",
        std::chrono::duration<double>(idle_timeout.value_or(Duration::zero())).count(), peer.to_string());
  }
  if (server != nullptr) {
    server->close_compacted_connection(fd, std::move(peer));
  } else {
    loop->remove_handler(fd);
    ::close(fd);
  }
  connection_ended();
}

std::unique_ptr<IOStream> HTTPServer::take_compacted_socket(int fd, const SocketAddress& peer, bool fin_received) {
  try {
    return std::make_unique<IOStream>(fd, stream_options(), *registry_->loop, IOStream::TakeRegistration{fin_received});
  } catch (...) {
    registry_->loop->remove_handler(fd);
    ::close(fd);
    log(LogLevel::error, LogCategory::application, "Error taking back the idle connection from {}: {}",
        peer.to_string(), describe_current_exception());
    return nullptr;
  }
}

void HTTPServer::resume_connection(int fd, SocketAddress peer, bool fin_received) {
  std::unique_ptr<IOStream> stream = take_compacted_socket(fd, peer, fin_received);
  if (!stream) return;
  // The first read of the rebuilt connection reads the socket at once: bytes are there.
  spawn(HTTPServer::handle_stream(std::move(stream), std::move(peer)));
}

void HTTPServer::close_compacted_connection(int fd, SocketAddress peer) {
  std::unique_ptr<IOStream> stream = take_compacted_socket(fd, peer);
  if (!stream) return;
  try {
    HTTPServerConnection connection(std::move(stream), std::move(peer), options_, params_);
    connection.stream().close();
    delegate_.on_close(connection);
  } catch (...) {  // the stream closed the socket as it went
    log(LogLevel::error, LogCategory::application, "Error closing an idle connection: {}",
        describe_current_exception());
  }
}

// ---- HTTPServer -----------------------------------------------------------------------------

HTTPServer::HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options,
                       IOStreamOptions stream_options, std::shared_ptr<const SSLContext> ssl_context)
    : TCPServer(stream_options, std::move(ssl_context)),
      delegate_(delegate),
      options_(std::move(options)),
      params_(HTTP1Connection::shared_parameters(options_.params)),
      registry_(std::make_shared<Registry>()) {
  if (this->ssl_context() && options_.protocol.empty()) options_.protocol = "https";
  registry_->server = this;
  registry_->trim_delay = std::chrono::seconds(1);
  // TLS connections keep today's objects while idle: see the header.
  if (!this->ssl_context()) registry_->compaction_period = options_.idle_compaction_period;
  if (options_.idle_connection_timeout > Duration::zero()) registry_->idle_timeout = options_.idle_connection_timeout;
}

HTTPServer::~HTTPServer() {
  // Compacted connections need the server to be served again: they close with it (the
  // others live on in their coroutines, as before).
  registry_->close_all_compacted();
  registry_->idle.reset();
  registry_->server = nullptr;
  registry_->compaction_period.reset();
  // The timers point at the registry, which the connections may keep alive past the
  // server but not past the loop: cancel them here, while the loop is known to exist.
  if (registry_->loop != nullptr) {
    registry_->loop->remove_timeout(registry_->trim_timer);
    registry_->loop->remove_timeout(registry_->sweep_timer);
  }
  registry_->trim_timer = {};
  registry_->sweep_timer = {};
  registry_->trim_delay.reset();
}

void HTTPServer::trim_memory_when_idle(std::optional<Duration> delay, size_t min_free_bytes) {
  if (!delay && registry_->trim_timer && registry_->loop != nullptr) {
    registry_->loop->remove_timeout(registry_->trim_timer);
    registry_->trim_timer = {};
  }
  registry_->trim_delay = delay;
  registry_->trim_min_free_bytes = min_free_bytes;
}

size_t HTTPServer::busy_connection_count() const {
  size_t n = 0;
  for (const ConnectionTracker* tracker = registry_->first; tracker != nullptr; tracker = tracker->next) {
    n += tracker->busy() ? 1 : 0;
  }
  return n;
}

SQUALL_HOT
Task<void> HTTPServer::handle_stream(std::unique_ptr<IOStream> stream, SocketAddress address) {
  if (ssl_context()) {
    // TCPServer made it an SSLIOStream; its handshake has not read anything yet.
    static_cast<SSLIOStream&>(*stream).set_plain_http_reply(kPlainHttpOnTlsPort);
  }
  if (registry_->loop == nullptr) registry_->loop = &stream->io_loop();
  // Registers now and unregisters however the request loop ends (also when the loop
  // destroys its frame), which owns the tracker and so the connection.
  auto tracker =
      std::make_unique<ConnectionTracker>(registry_, delegate_, std::move(stream), address, options_, params_);
  if (registry_->draining) tracker->close_when_flushed();  // accepted just before the listener closed
  HTTPServerConnection& connection = tracker->connection();
  return connection.serve(std::move(tracker));
}

Task<void> HTTPServer::close_tracked(std::shared_ptr<Registry> registry) {
  while (ConnectionTracker* tracker = registry->first) {
    // Its request loop ends, and with it the tracker (which leaves the registry) before
    // the future's callback runs. Should one ever stay (a loop that has not started yet,
    // whose close() is ready at once), a loop turn passes before the next look: never a
    // spin that keeps the loop from running it.
    co_await tracker->connection().close();
    if (registry->first == tracker) co_await moment();
  }
}

Task<void> HTTPServer::close_all_connections() {
  std::shared_ptr<Registry> registry = registry_;
  registry->close_all_compacted();
  co_await close_tracked(std::move(registry));
}

Task<void> HTTPServer::shutdown(Duration grace) {
  std::shared_ptr<Registry> registry = registry_;
  stop();
  if (!registry->draining) {
    registry->draining = true;
    const size_t open = registry->count + compacted_connection_count();
    size_t idle = registry->close_all_compacted();
    for (ConnectionTracker* tracker = registry->first; tracker != nullptr; tracker = tracker->next) {
      if (!tracker->busy()) {
        tracker->close_when_flushed();
        ++idle;
      }
    }
    log(LogLevel::info, LogCategory::general,
        "Shutting down: {} connections, {} idle closed, waiting up to {:.3g} s for the requests in flight", open, idle, std::chrono::duration<double>(grace).count());
  }
  if (registry->count != 0) {  // (no compacted ones: closed above, none made while draining)
    if (!registry->drained || registry->drained->done()) registry->drained.emplace();
    Future<void> drained = *registry->drained;
    try {
      co_await with_timeout(grace, drained);
    } catch (const TimeoutError&) {
      log(LogLevel::warning, LogCategory::general, "Shutdown: {} connections still open after {:.3g} s, closing them",
          registry->count, std::chrono::duration<double>(grace).count());
    }
  }
  // What the grace left open (nothing when the wait above completed).
  co_await close_tracked(std::move(registry));
}

}  // namespace squall
