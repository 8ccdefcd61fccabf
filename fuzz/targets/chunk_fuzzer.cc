// chunk: the chunked-body decoder (HTTP1Connection::read_chunked_body, reached through
// the client's response reader: "HTTP/1.1 200 OK / Transfer-Encoding: chunked" followed
// by the fuzzer's bytes), fed once in one piece and once in fuzzer-chosen pieces with a
// fuzzer-chosen read_chunk_size, max_body_size and chunk_size. Invariants:
//   - the decoded body never exceeds the chunked input, nor max_body_size;
//   - every data_received piece is at most chunk_size bytes;
//   - the outcome (finished / error status and reason) and, when finished, the body are
//     identical however the input was split;
//   - a finished body equals what a minimal independent decoder (parse_chunk_size_line
//     + CRLF checks) makes of the same bytes;
//   - a finished message got exactly one finish() and no on_connection_close().
// There is no pure chunk decoder in the reference, so this goes through the connection.
//
// Input layout: [max_body: 2 bytes][chunk_size][read_chunk_size][n_sizes][sizes...]
// then the chunked body (chunk lines, data, trailers).
#include <string>
#include <string_view>

#include "client_reader.h"
#include "fuzz_input.h"
#include "squall/http_parse.h"

namespace {

using namespace squall;
using squall_fuzz::ClientRead;
using squall_fuzz::FuzzInput;

constexpr std::string_view kHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

// Minimal decoder: the body, or nullopt if the framing is bad or incomplete.
std::optional<std::string> reference_decode(std::string_view in, uint64_t max_body) {
  std::string body;
  ChunkLimits limits;
  limits.max_size = max_body;
  for (;;) {
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    ParseResult<uint64_t> size = parse_chunk_size_line(in.substr(0, eol + 2), limits);
    if (!size) return std::nullopt;
    in.remove_prefix(eol + 2);
    if (*size == 0) break;
    if (*size > in.size() || in.size() - *size < 2) return std::nullopt;
    body.append(in.substr(0, *size));
    in.remove_prefix(*size);
    if (in.substr(0, 2) != "\r\n") return std::nullopt;
    in.remove_prefix(2);
  }
  // Trailer section up to the empty line.
  for (;;) {
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    in.remove_prefix(eol + 2);
    if (eol == 0) break;
  }
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  FuzzInput in(data, size);
  HTTP1ConnectionParameters params;
  size_t max_body = in.range(0, 65535);
  params.max_body_size = max_body == 0 ? 100 * 1024 * 1024 : max_body % 8192;
  params.chunk_size = in.range(1, 64) * (in.flag() ? 1 : 64);
  IOStreamOptions fragmented;
  fragmented.read_chunk_size = in.range(1, 256);
  size_t n_sizes = in.range(0, 16);
  std::string sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(static_cast<char>(in.byte()));
  std::string_view body = in.rest();

  std::string message(kHead);
  message.append(body);
  std::string_view whole(message);

  ClientRead once = squall_fuzz::read_response_pieces({whole}, params, IOStreamOptions{});
  std::vector<std::string_view> pieces = squall_fuzz::split_pieces(whole, sizes);
  ClientRead split = squall_fuzz::read_response_pieces(pieces, params, fragmented);

  for (const ClientRead* r : {&once, &split}) {
    FUZZ_CHECK(r->body.size() <= body.size());
    FUZZ_CHECK(r->body.size() <= params.max_body_size);
    FUZZ_CHECK(r->data_calls <= r->body.size());  // no empty pieces
    FUZZ_CHECK(r->outcome != ClientRead::Outcome::other);
    if (r->outcome == ClientRead::Outcome::finished) {
      FUZZ_CHECK(r->finish_calls == 1);
      FUZZ_CHECK(r->close_calls == 0);
      FUZZ_CHECK(r->code == 200);
    } else {
      FUZZ_CHECK(r->finish_calls == 0);
    }
  }
  if (once.outcome != split.outcome || once.status != split.status || once.error != split.error) {
    std::fprintf(stderr, "one piece: %d %d '%s'; split: %d %d '%s'\n", static_cast<int>(once.outcome), once.status,
                 once.error.c_str(), static_cast<int>(split.outcome), split.status, split.error.c_str());
    FUZZ_CHECK(!"outcome depends on how the input was split");
  }
  if (once.outcome == ClientRead::Outcome::finished) {
    FUZZ_CHECK(once.body == split.body);
    std::optional<std::string> decoded = reference_decode(body, params.max_body_size);
    FUZZ_CHECK(decoded.has_value());
    FUZZ_CHECK(*decoded == once.body);
  }
  return 0;
}
