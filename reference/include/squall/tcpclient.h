// TCPClient: opens connected IOStreams to a host and port — Tornado's tcpclient.TCPClient.
//
//   squall::TCPClient client;
//   std::unique_ptr<squall::IOStream> stream = co_await client.connect("localhost", 8888, 5s);
//
// connect() resolves the host (Resolver), then tries the addresses in the order the
// resolver gave them, one after the other, until one connects. If all fail, the first
// failure is reported (typically StreamClosedError whose real_error() is a
// std::system_error such as ECONNREFUSED). Tornado's _Connector races the second address
// family after 300 ms; Squall tries strictly in turn (a simplification: resolve order
// already puts the preferred family first).
//
// With an SSLContext (SSLContext::client) the connected stream is upgraded to TLS
// (wrap_tls, ssl_iostream.h) with the host as server name — SNI, and the name or IP the
// certificate must match — and handed over once the handshake is done, as Tornado's
// connect(ssl_options=...). The timeout covers the handshake too.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/netutil.h"
#include "squall/ssl_context.h"
#include "squall/task.h"

namespace squall {

class TCPClient {
 public:
  // resolver: used for every connect; it must outlive the connects in progress. nullptr:
  // the client makes (and owns) a default Resolver.
  explicit TCPClient(Resolver* resolver = nullptr);

  // Connects to host:port (a name or an IP literal). The future gets the connected
  // stream — owned by whoever takes it — or fails with ResolveError, StreamClosedError
  // (connect failed), or TimeoutError if timeout elapses first; the timeout covers the
  // name lookup and all connection attempts, and the attempt in flight when it expires is
  // closed. family restricts resolution (AF_INET / AF_INET6). With ssl_context the stream
  // is an SSLIOStream whose handshake has completed; a failed handshake fails the future
  // with StreamClosedError (real_error(): SSLError, e.g. "certificate verify failed: …").
  // The connect carries on if the client is destroyed meanwhile; it uses the current loop.
  //
  // Await it with co_await (the awaited stream is moved out: await a given future once).
  Future<std::unique_ptr<IOStream>> connect(std::string host, uint16_t port,
                                            std::optional<Duration> timeout = std::nullopt,
                                            IOStreamOptions options = {}, int family = AF_UNSPEC,
                                            std::shared_ptr<const SSLContext> ssl_context = nullptr);

 private:
  std::shared_ptr<Resolver> resolver_;
};

}  // namespace squall
