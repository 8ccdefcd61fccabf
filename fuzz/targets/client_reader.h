// read_response_pieces: the client's response reader (HTTP1Connection::read_response)
// fed a response in given pieces through StreamHarness (the `response` target).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/future.h"
#include "squall/http1connection.h"
#include "squall/task.h"
#include "stream_harness.h"

namespace squall_fuzz {

struct ClientRead {
  enum class Outcome { finished, input_error, closed, other } outcome = Outcome::other;
  int status = 0;            // HTTPInputError::status() for input_error
  std::string error;         // what()
  bool got_headers = false;
  int code = 0;
  std::string body;          // concatenation of data_received
  size_t data_calls = 0;
  size_t finish_calls = 0;
  size_t close_calls = 0;
  bool keep_alive = false;   // read_response's result
};

class CollectingDelegate : public squall::HTTPMessageDelegate {
 public:
  explicit CollectingDelegate(ClientRead& r) : r_(r) {}
  squall::FlowControl headers_received(const squall::ResponseStartLine& line, squall::HTTPHeaders&) override {
    r_.got_headers = true;
    r_.code = line.code;
    return std::nullopt;
  }
  squall::FlowControl data_received(std::string chunk) override {
    ++r_.data_calls;
    r_.body += chunk;
    return std::nullopt;
  }
  void finish() override { ++r_.finish_calls; }
  void on_connection_close() override { ++r_.close_calls; }

 private:
  ClientRead& r_;
};

inline squall::Task<void> client_read(squall::HTTP1Connection& conn, std::string method, ClientRead& r) {
  CollectingDelegate delegate(r);
  try {
    squall::HTTPHeaders headers{{"Host", "fuzz"}};
    // The request is written first so that the connection knows the method (HEAD).
    conn.write_headers(squall::RequestStartLine{method, "/", "HTTP/1.1"}, headers).mark_retrieved();
    conn.finish();
    r.keep_alive = co_await conn.read_response(delegate);
    r.outcome = ClientRead::Outcome::finished;
  } catch (const squall::HTTPInputError& e) {
    r.outcome = ClientRead::Outcome::input_error;
    r.status = e.status();
    r.error = e.what();
  } catch (const squall::StreamClosedError& e) {
    r.outcome = ClientRead::Outcome::closed;
    r.error = e.what();
  } catch (const std::exception& e) {
    r.outcome = ClientRead::Outcome::other;
    r.error = e.what();
  }
}

inline ClientRead read_response_pieces(std::vector<std::string_view> pieces, squall::HTTP1ConnectionParameters params,
                                       squall::IOStreamOptions options, std::string method = "GET") {
  ClientRead r;
  StreamHarness harness;
  std::unique_ptr<squall::IOStream> stream = harness.make_stream(options);
  {
    squall::HTTP1Connection conn(*stream, squall::HTTP1Connection::Side::client, params);
    harness.feed(std::move(pieces));
    harness.loop().run_sync([&] { return client_read(conn, method, r); });
  }
  stream.reset();
  return r;
}

}  // namespace squall_fuzz
