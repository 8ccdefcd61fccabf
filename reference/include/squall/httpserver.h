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
// options.protocol says otherwise), as Tornado's HTTPServer(ssl_options=...).
#pragma once

#include <memory>
#include <unordered_set>
#include <vector>

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

  size_t connection_count() const { return registry_->connections.size(); }
  const HTTPServerOptions& options() const { return options_; }

 private:
  struct Registry {
    std::unordered_set<HTTPServerConnection*> connections;
  };

  HTTPServerConnectionDelegate& delegate_;
  HTTPServerOptions options_;
  // Shared with the connection coroutines, which may outlive the server until the loop
  // closes.
  std::shared_ptr<Registry> registry_;
};

}  // namespace squall
