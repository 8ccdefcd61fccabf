// chunk: the chunked-body decoder (squall::ChunkedDecoder, which HTTP1Connection uses for
// requests and responses), fed the fuzzer's bytes once whole and once in fuzzer-chosen
// pieces, the way the connection feeds it (a buffer of unconsumed bytes, more appended
// on need_more), with fuzzer-chosen limits and data piece size. Invariants:
//   - every data piece is a non-empty view inside the buffer it was decoded from and at
//     most max_data bytes; `consumed` never passes the end of the buffer;
//   - the decoded body never exceeds the input, nor max_body;
//   - the outcome (done / error status and reason / incomplete), the body and the bytes
//     left after the message are identical however the input was split;
//   - a finished body equals what a minimal independent decoder (parse_chunk_size_line
//     + CRLF checks) makes of the same bytes; an input it rejects is not finished.
// The connection around the decoder is fuzzed by `connection` (server) and `response`.
//
// Input layout: [max_body: 2 bytes][max_data][max_trailer_fields][n_sizes][sizes...]
// then the chunked body (chunk lines, data, trailers).
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/chunked_decoder.h"
#include "squall/http_parse.h"

namespace {

using namespace squall;
using squall_fuzz::FuzzInput;

struct Decoded {
  enum class Outcome { done, error, incomplete } outcome = Outcome::incomplete;
  ParseError error;
  std::string body;
  size_t left_over = 0;
};

Decoded decode(const std::vector<std::string_view>& pieces, size_t max_data, const ChunkedDecoderLimits& limits) {
  Decoded out;
  ChunkedDecoder decoder(limits);
  std::string buffer;
  size_t next = 0;
  for (;;) {
    ParseResult<ChunkedStep> step = decoder.step(buffer, max_data);
    if (!step) {
      out.outcome = Decoded::Outcome::error;
      out.error = step.error();
      return out;
    }
    FUZZ_CHECK(step->consumed <= buffer.size());
    if (step->kind == ChunkedStep::Kind::data) {
      FUZZ_CHECK(!step->data.empty());
      FUZZ_CHECK(step->data.size() <= max_data);
      FUZZ_CHECK(step->data.data() >= buffer.data());
      FUZZ_CHECK(step->data.data() + step->data.size() <= buffer.data() + step->consumed);
      out.body.append(step->data);
    } else {
      FUZZ_CHECK(step->data.empty());
    }
    FUZZ_CHECK(decoder.body_bytes() <= limits.max_body);
    buffer.erase(0, step->consumed);
    if (step->kind == ChunkedStep::Kind::done) {
      FUZZ_CHECK(decoder.done());
      out.outcome = Decoded::Outcome::done;
      out.left_over = buffer.size();
      for (size_t i = next; i < pieces.size(); ++i) out.left_over += pieces[i].size();  // not fed yet
      return out;
    }
    if (step->kind == ChunkedStep::Kind::need_more) {
      if (next == pieces.size()) return out;  // incomplete
      buffer.append(pieces[next++]);
    }
  }
}

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
  if (body.size() > max_body) return std::nullopt;
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  FuzzInput in(data, size);
  ChunkedDecoderLimits limits;
  size_t max_body = in.range(0, 65535);
  limits.max_body = max_body == 0 ? 100 * 1024 * 1024 : max_body % 8192;
  size_t max_data = in.range(1, 64) * (in.flag() ? 1 : 64);
  limits.max_trailer_fields = in.range(0, 8);
  limits.max_trailer_bytes = in.flag() ? 64 : 65536;
  size_t n_sizes = in.range(0, 16);
  std::string sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(static_cast<char>(in.byte()));
  std::string_view body = in.rest();

  Decoded once = decode({body}, max_data, limits);
  Decoded split = decode(squall_fuzz::split_pieces(body, sizes), max_data, limits);

  for (const Decoded* d : {&once, &split}) {
    FUZZ_CHECK(d->body.size() <= body.size());
    FUZZ_CHECK(d->body.size() <= limits.max_body);
    if (d->outcome == Decoded::Outcome::error) {
      int s = d->error.status;
      FUZZ_CHECK(s == 400 || s == 413 || s == 431);
    }
  }
  if (once.outcome != split.outcome || !(once.error == split.error)) {
    std::fprintf(stderr, "one piece: %d %d '%.*s'; split: %d %d '%.*s'\n", static_cast<int>(once.outcome),
                 once.error.status, static_cast<int>(once.error.reason.size()), once.error.reason.data(),
                 static_cast<int>(split.outcome), split.error.status, static_cast<int>(split.error.reason.size()),
                 split.error.reason.data());
    FUZZ_CHECK(!"outcome depends on how the input was split");
  }
  FUZZ_CHECK(once.body == split.body);
  if (once.outcome == Decoded::Outcome::done) {
    FUZZ_CHECK(once.left_over == split.left_over);
    std::optional<std::string> decoded = reference_decode(body.substr(0, body.size() - once.left_over), limits.max_body);
    FUZZ_CHECK(decoded.has_value());
    FUZZ_CHECK(*decoded == once.body);
  }
  return 0;
}
