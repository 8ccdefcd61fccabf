// response: the client's response reader (HTTP1Connection::read_response after a GET or
// HEAD request was written) over whole fuzzer-chosen responses, delivered in
// fuzzer-chosen pieces. Invariants: it ends (no hang: libFuzzer's -timeout), with a
// result or a typed error (HTTPInputError with a 4xx/5xx status, StreamClosedError),
// never another exception; the body never exceeds the input nor max_body_size; a
// finished message got one finish() and no on_connection_close(); an input error after
// the head was delivered is reported to the delegate by on_connection_close(); a
// connection closed before any head ends quietly (false, no delegate call).
//
// Input layout: [flags][max_body: 2 bytes][n_sizes][sizes...] then the response bytes.
#include <string>
#include <string_view>

#include "client_reader.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  using squall_fuzz::ClientRead;
  squall_fuzz::FuzzInput in(data, size);
  uint8_t flags = in.byte();
  squall::HTTP1ConnectionParameters params;
  size_t max_body = in.range(0, 65535);
  if (max_body != 0) params.max_body_size = max_body % 8192;
  params.decompress = flags & 2;
  params.chunk_size = (flags & 4) ? 7 : 65536;
  if (flags & 8) params.max_header_size = 256;
  squall::IOStreamOptions options;
  options.read_chunk_size = (flags & 16) ? 3 : 65536;
  size_t n_sizes = in.range(0, 16);
  std::string sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(static_cast<char>(in.byte()));
  std::string_view response = in.rest();

  ClientRead r = squall_fuzz::read_response_pieces(squall_fuzz::split_pieces(response, sizes), params, options,
                                                   (flags & 1) ? "HEAD" : "GET");
  if (r.outcome == ClientRead::Outcome::other) {
    std::fprintf(stderr, "unexpected exception: %s\n", r.error.c_str());
    FUZZ_CHECK(r.outcome != ClientRead::Outcome::other);
  }
  if (!params.decompress) FUZZ_CHECK(r.body.size() <= response.size());
  FUZZ_CHECK(r.body.size() <= params.max_body_size);
  if (r.outcome == ClientRead::Outcome::finished && !r.got_headers) {
    // Closed before a head arrived: read_response returns false and, as in Tornado, the
    // delegate hears nothing.
    FUZZ_CHECK(!r.keep_alive && r.finish_calls == 0 && r.close_calls == 0);
  } else if (r.outcome == ClientRead::Outcome::finished) {
    FUZZ_CHECK(r.finish_calls == 1 && r.close_calls == 0);
    FUZZ_CHECK(r.code >= 200 || r.code == 101);
    if (flags & 1) FUZZ_CHECK(r.body.empty());
  } else {
    FUZZ_CHECK(r.finish_calls == 0);
    if (r.got_headers) FUZZ_CHECK(r.close_calls == 1);
  }
  if (r.outcome == ClientRead::Outcome::input_error) FUZZ_CHECK(r.status >= 400 && r.status <= 599);
  return 0;
}
