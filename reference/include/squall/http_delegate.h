// The interfaces between an HTTP/1.x connection and what sits above it — Tornado's
// httputil.HTTPConnection, HTTPMessageDelegate and HTTPServerConnectionDelegate.
//
// Data flows one way: the connection parses bytes from the stream and calls its message
// delegate (headers_received, data_received, finish — or on_connection_close if the
// peer goes away first); whoever answers writes through the HTTPConnection interface
// (write_headers, write, finish), and the connection turns that into bytes on the
// stream. On a server, HTTPServerConnectionDelegate::start_request makes one message
// delegate per request; on a client the caller passes its own. A delegate never touches
// a buffer and the connection never knows about routing or handlers.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "squall/detail/hot_path.h"
#include "squall/future.h"
#include "squall/http_headers.h"

namespace squall {

// The first line of a request, owned (Tornado's RequestStartLine).
struct RequestStartLine {
  std::string method;
  std::string target;   // the request-target as sent ("/a?b", "*", "http://h/p")
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"
};

// The first line of a response, owned (Tornado's ResponseStartLine).
struct ResponseStartLine {
  std::string version;  // "HTTP/1.1"
  int code = 200;
  std::string reason;
};

// What a delegate method returns: nothing (go on at once) or a future the connection
// awaits before reading further — flow control for slow consumers, as in Tornado.
using FlowControl = std::optional<Future<void>>;

// Receives one parsed HTTP message (a request on a server, a response on a client).
class HTTPMessageDelegate {
 public:
  virtual ~HTTPMessageDelegate() = default;
  // The start line is a RequestStartLine on a server, a ResponseStartLine on a client;
  // each side's connection calls the matching overload. The connection does not look at
  // the headers after this call, so a delegate may move them out.
  virtual FlowControl headers_received(const RequestStartLine&, HTTPHeaders&) { return std::nullopt; }
  virtual FlowControl headers_received(const ResponseStartLine&, HTTPHeaders&) { return std::nullopt; }
  // A piece of the body, de-chunked (and decompressed when the connection is asked to).
  virtual FlowControl data_received(std::string chunk) = 0;
  // The whole message was received.
  virtual void finish() = 0;
  // The connection closed before the message was complete.
  virtual void on_connection_close() = 0;
};

// How the side that answers writes a message back (Tornado's HTTPConnection).
class HTTPConnection {
 public:
  virtual ~HTTPConnection() = default;
  // Server side: the response head. The connection adds framing headers
  // (Content-Length or Transfer-Encoding: chunked, Connection) as Tornado does. A
  // non-empty chunk is sent with the head. Throws std::invalid_argument for a header
  // value with CR or LF.
  virtual Future<void> write_headers(const ResponseStartLine& start_line, HTTPHeaders& headers,
                                     std::string_view chunk = {}) = 0;
  // Client side: the request head.
  virtual Future<void> write_headers(const RequestStartLine& start_line, HTTPHeaders& headers,
                                     std::string_view chunk = {}) = 0;
  // A piece of the body (chunk-encoded when the connection chose chunked output).
  virtual Future<void> write(std::string_view chunk) = 0;
  // Ends the message: writes the last chunk if chunked, checks Content-Length was met.
  virtual void finish() = 0;
};

class HTTPServerConnection;

// A server's application side: makes a message delegate for each request (Tornado's
// HTTPServerConnectionDelegate; HTTPServer and Application implement it).
class HTTPServerConnectionDelegate {
 public:
  virtual ~HTTPServerConnectionDelegate() = default;
  // `request_conn` stays valid until the delegate's finish or on_connection_close.
  virtual std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection& server_conn,
                                                             HTTPConnection& request_conn) = 0;
  // The connection is done with the request the last start_request began: its message
  // delegate has been destroyed (the response was sent, or the connection closed first).
  // Called once for each start_request that returned (Squall's addition: HTTPServer
  // counts the requests in flight with it, without a wrapper around every delegate).
  SQUALL_HOT virtual void request_ended(HTTPServerConnection&) {}
  // The connection is gone (after any delegate got on_connection_close).
  SQUALL_HOT virtual void on_close(HTTPServerConnection&) {}
};

}  // namespace squall
