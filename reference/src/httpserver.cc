// HTTPServer (see squall/httpserver.h).
#include "squall/httpserver.h"

#include <utility>

namespace squall {

HTTPServer::HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options,
                       IOStreamOptions stream_options, std::shared_ptr<const SSLContext> ssl_context)
    : TCPServer(stream_options, std::move(ssl_context)),
      delegate_(delegate),
      options_(std::move(options)),
      registry_(std::make_shared<Registry>()) {
  if (this->ssl_context() && options_.protocol.empty()) options_.protocol = "https";
}

HTTPServer::~HTTPServer() = default;

Task<void> HTTPServer::handle_stream(std::unique_ptr<IOStream> stream, SocketAddress address) {
  auto connection = std::make_unique<HTTPServerConnection>(std::move(stream), std::move(address), options_);
  // Unregisters however the coroutine ends (also when the loop destroys its frame).
  struct Unregister {
    std::shared_ptr<Registry> registry;
    HTTPServerConnection* connection;
    ~Unregister() { registry->connections.erase(connection); }
  } unregister{registry_, connection.get()};
  registry_->connections.insert(connection.get());
  co_await connection->serve(delegate_);
}

Task<void> HTTPServer::close_all_connections() {
  std::shared_ptr<Registry> registry = registry_;
  while (!registry->connections.empty()) {
    HTTPServerConnection* connection = *registry->connections.begin();
    Future<void> closed = connection->close();
    co_await closed;
    // serve() has ended; the connection leaves the registry once handle_stream resumes.
    while (registry->connections.count(connection) != 0) co_await moment();
  }
}

}  // namespace squall
