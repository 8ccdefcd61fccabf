// TCPServer: a non-blocking, single-threaded TCP server — Tornado's tcpserver.TCPServer.
//
// Subclass it and override handle_stream(); every accepted connection becomes an
// IOStream handed to a new handle_stream coroutine:
//
//   class EchoServer : public squall::TCPServer {
//     squall::Task<void> handle_stream(std::unique_ptr<squall::IOStream> stream,
//                                      squall::SocketAddress address) override {
//       for (;;) co_await stream->write(co_await stream->read_until("\n"));
//     }
//   };
//
// Three ways to start it, as in Tornado:
//   1. listen(port): bind and start accepting at once (single process);
//   2. add_sockets(bind_sockets(port)): the same in two steps, for callers that bind
//      (and maybe fork_processes) themselves;
//   3. bind(port); start(n): pre-forked workers — bind in the parent, fork n processes,
//      each adds the inherited sockets to its own loop. No IOLoop may exist before start().
// Then run the loop (IOLoop::current().start()).
//
// TLS: given an SSLContext (SSLContext::server, ssl_context.h), every accepted socket is
// wrapped in a server-side SSLIOStream before handle_stream gets it, as Tornado does with
// ssl_options. The handshake runs as the stream is first read or written (or awaited with
// SSLIOStream::wait_for_handshake, to see the client certificate or ALPN first); one
// that fails closes that connection only.
//
// Ownership: the server owns its listening sockets and closes them in stop() and in its
// destructor. Each connection's stream is owned by its handle_stream coroutine (it is
// moved into the coroutine frame): the stream closes when the coroutine finishes — or,
// if it is still suspended then, when the loop closes and destroys the frame. A
// coroutine that uses the server (`this`) after it was destroyed is the subclass's
// problem, as in Tornado: destroy the server only when its connections are done, or
// don't touch `this` after the first suspension. Connections already accepted keep
// running after stop(). The server must be stopped or destroyed before its loop is
// destroyed; it uses the loop that is current when the sockets are added.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "squall/iostream.h"
#include "squall/netutil.h"
#include "squall/ssl_context.h"
#include "squall/task.h"

namespace squall {

class TCPServer {
 public:
  // stream_options apply to every accepted connection's IOStream (max_buffer_size,
  // read_chunk_size, ...); with ssl_context (a server context) connections speak TLS.
  explicit TCPServer(IOStreamOptions stream_options = {}, std::shared_ptr<const SSLContext> ssl_context = nullptr);
  // Calls stop().
  virtual ~TCPServer();
  TCPServer(const TCPServer&) = delete;
  TCPServer& operator=(const TCPServer&) = delete;

  // bind_sockets(...) + add_sockets(...): accepting starts at once (in the current loop).
  // May be called more than once to listen on several ports. Arguments as for bind_sockets.
  void listen(uint16_t port, std::string address = "", int family = AF_UNSPEC, int backlog = kDefaultBacklog,
              bool reuse_port = false);

  // Starts accepting on already-listening sockets; the server takes ownership of them.
  void add_sockets(std::vector<int> sockets);
  void add_socket(int socket);

  // Binds now, accepts once start() is called (immediately if it already was). May be
  // called several times before start().
  void bind(uint16_t port, std::string address = "", int family = AF_UNSPEC, int backlog = kDefaultBacklog,
            bool reuse_port = false);

  // Starts accepting on the sockets bound with bind(). num_processes == 1 runs in this
  // process; any other value first forks that many workers with fork_processes
  // (<= 0: one per CPU) and returns in each worker — the parent never returns (see
  // process.h). Throws std::logic_error if called twice.
  void start(int num_processes = 1, int max_restarts = 100);

  // Stops listening: unregisters and closes every listening socket (and the ones bound
  // but not started). Connections already accepted carry on. Idempotent; listen() may be
  // called again afterwards.
  void stop();

  // The local address / port of each listening socket (bound or accepting), in the
  // order they were added — for port 0, the ports the kernel chose.
  std::vector<SocketAddress> addresses() const;
  std::vector<uint16_t> ports() const;

  // Handles one accepted connection. Runs as a spawned coroutine: the accept loop does not
  // wait for it, and an exception escaping it is logged (application category) without
  // affecting the server. The coroutine owns the stream.
  virtual Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress address) = 0;

 protected:
  const IOStreamOptions& stream_options() const { return stream_options_; }
  const std::shared_ptr<const SSLContext>& ssl_context() const { return ssl_context_; }

 private:
  struct Listener {
    int fd;
    std::function<void()> remove_handler;
  };

  void handle_connection(int fd, SocketAddress address);

  IOStreamOptions stream_options_;
  std::shared_ptr<const SSLContext> ssl_context_;
  std::vector<Listener> listeners_;   // accepting
  std::vector<int> pending_sockets_;  // bound, waiting for start()
  bool started_ = false;
};

}  // namespace squall
