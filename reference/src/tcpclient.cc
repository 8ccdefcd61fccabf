#include "squall/tcpclient.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "squall/ssl_iostream.h"

namespace squall {

namespace {

// Completes like inner, or fails with TimeoutError at deadline, whichever comes first.
// Unlike with_timeout, an outcome arriving after the deadline is dropped quietly: here it
// is the expected StreamClosedError of the attempt we closed, or a lookup nobody wants.
template <typename T>
Future<T> until_deadline(Future<T> inner, std::optional<TimePoint> deadline) {
  if (!deadline) return inner;
  Future<T> result;
  IOLoop& loop = IOLoop::current();
  TimeoutHandle timer = loop.call_at(*deadline, [result]() mutable {
    if (!result.done()) result.set_exception(TimeoutError("Timeout while connecting"));
  });
  inner.add_done_callback([result, timer, &loop](Future<T>& done) mutable {
    loop.remove_timeout(timer);
    std::exception_ptr error = done.exception();  // marks it retrieved either way
    if (result.done()) return;
    if (error) {
      result.set_exception(error);
    } else if constexpr (std::is_void_v<T>) {
      result.set_result();
    } else {
      result.set_result(done.result());
    }
  });
  return result;
}

Task<std::unique_ptr<IOStream>> connect_task(std::shared_ptr<Resolver> resolver, std::string host, uint16_t port,
                                             std::optional<TimePoint> deadline, IOStreamOptions options,
                                             int family, std::shared_ptr<const SSLContext> ssl_context) {
  std::vector<SocketAddress> addresses = co_await until_deadline(resolver->resolve(host, port, family), deadline);
  if (addresses.empty()) throw ResolveError(EAI_NONAME, "cannot resolve '" + host + "': no addresses");

  std::exception_ptr first_error;
  for (const SocketAddress& address : addresses) {
    int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (!first_error) {
        first_error = std::make_exception_ptr(std::system_error(errno, std::generic_category(), "socket"));
      }
      continue;
    }
    auto stream = std::make_unique<IOStream>(fd, options);
    try {
      co_await until_deadline(stream->connect(address.get(), address.length()), deadline);
    } catch (const TimeoutError&) {
      stream->close();  // the attempt in flight: its socket goes now, not with the frame
      throw;
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
      continue;
    }
    if (!ssl_context) co_return std::move(stream);
    // A failed handshake is the answer (another address would present the same
    // certificate); the deadline bounds it as it bounds the connect.
    std::unique_ptr<SSLIOStream> tls = wrap_tls(std::move(stream), ssl_context, host);
    Future<void> handshake = until_deadline(tls->wait_for_handshake(), deadline);
    try {
      co_await handshake;
    } catch (const TimeoutError&) {
      tls->close();
      throw;
    }
    co_return std::move(tls);
  }
  std::rethrow_exception(first_error);
}

}  // namespace

TCPClient::TCPClient(Resolver* resolver) {
  if (resolver != nullptr) {
    resolver_ = std::shared_ptr<Resolver>(resolver, [](Resolver*) {});  // borrowed
  } else {
    resolver_ = std::make_shared<Resolver>();
  }
}

Future<std::unique_ptr<IOStream>> TCPClient::connect(std::string host, uint16_t port, std::optional<Duration> timeout,
                                                     IOStreamOptions options, int family,
                                                     std::shared_ptr<const SSLContext> ssl_context) {
  std::optional<TimePoint> deadline;
  if (timeout) deadline = IOLoop::current().time() + *timeout;
  return connect_task(resolver_, std::move(host), port, deadline, options, family, std::move(ssl_context)).future();
}

}  // namespace squall
