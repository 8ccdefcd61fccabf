#include "squall/tcpserver.h"

#include <unistd.h>

#include <new>
#include <stdexcept>

#include "squall/detail/hot_path.h"
#include "squall/log.h"
#include "squall/process.h"
#include "squall/ssl_iostream.h"

namespace squall {

TCPServer::TCPServer(IOStreamOptions stream_options, std::shared_ptr<const SSLContext> ssl_context)
    : stream_options_(stream_options), ssl_context_(std::move(ssl_context)) {
  if (ssl_context_ && !ssl_context_->server_side()) throw std::invalid_argument("TCPServer: needs a server SSLContext");
}

TCPServer::~TCPServer() { stop(); }

void TCPServer::listen(uint16_t port, std::string address, int family, int backlog, bool reuse_port) {
  add_sockets(bind_sockets(port, std::move(address), family, backlog, reuse_port));
}

void TCPServer::add_sockets(std::vector<int> sockets) {
  for (int fd : sockets) {
    // Registered first, then recorded: if registration throws, the caller still owns fd.
    auto remove = add_accept_handler(fd, [this](int connection, SocketAddress peer) {
      handle_connection(connection, std::move(peer));
    });
    listeners_.push_back(Listener{fd, std::move(remove)});
  }
}

void TCPServer::add_socket(int socket) { add_sockets({socket}); }

void TCPServer::bind(uint16_t port, std::string address, int family, int backlog, bool reuse_port) {
  std::vector<int> sockets = bind_sockets(port, std::move(address), family, backlog, reuse_port);
  if (started_) {
    add_sockets(std::move(sockets));
  } else {
    pending_sockets_.insert(pending_sockets_.end(), sockets.begin(), sockets.end());
  }
}

void TCPServer::start(int num_processes, int max_restarts) {
  if (started_) throw std::logic_error("TCPServer::start called twice");
  if (num_processes != 1) fork_processes(num_processes, max_restarts);  // returns in the workers only
  started_ = true;
  std::vector<int> sockets;
  sockets.swap(pending_sockets_);
  add_sockets(std::move(sockets));
}

void TCPServer::stop() {
  for (Listener& listener : listeners_) {
    listener.remove_handler();  // before close: the loop must not watch a closed fd
    ::close(listener.fd);
  }
  listeners_.clear();
  for (int fd : pending_sockets_) ::close(fd);
  pending_sockets_.clear();
}

std::vector<SocketAddress> TCPServer::addresses() const {
  std::vector<SocketAddress> result;
  for (const Listener& listener : listeners_) result.push_back(socket_address(listener.fd));
  for (int fd : pending_sockets_) result.push_back(socket_address(fd));
  return result;
}

std::vector<uint16_t> TCPServer::ports() const {
  std::vector<uint16_t> result;
  for (const SocketAddress& address : addresses()) result.push_back(address.port());
  return result;
}

SQUALL_HOT
void TCPServer::handle_connection(int fd, SocketAddress address) {
  std::unique_ptr<IOStream> stream;
  try {
    if (ssl_context_) {
      stream = std::make_unique<SSLIOStream>(fd, ssl_context_, std::string(), stream_options_);
    } else {
      // add_accept_handler's accept4 made the socket non-blocking and close-on-exec.
      stream = std::make_unique<IOStream>(fd, stream_options_, nullptr,
                                          IOStream::NonBlockingSocket{.edge_triggered = true});
    }
  } catch (const std::bad_alloc&) {
    ::close(fd);  // IOStream never took the descriptor
    throw;
  } catch (...) {
    // The IOStream constructor closes fd when it fails after taking it.
    log(LogLevel::error, LogCategory::application, "Error creating a stream for {}: {}", address.to_string(),
        describe_current_exception());
    return;
  }
  try {
    // The stream moves into the coroutine frame, which owns it from here on.
    spawn(handle_stream(std::move(stream), std::move(address)));
  } catch (...) {
    // Only a handle_stream that is not a coroutine can throw here.
    log(LogLevel::error, LogCategory::application, "Error in connection callback: {}", describe_current_exception());
  }
}

}  // namespace squall
