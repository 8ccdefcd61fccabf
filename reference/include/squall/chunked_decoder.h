// ChunkedDecoder: the chunked transfer coding (RFC 9112 §7.1) as a pure, incremental
// state machine: no I/O, no clock, and body bytes are returned as views, never copied.
//
// Why a separate piece: the connection reads from a stream, but the framing rules are
// pure functions of the bytes. Keeping them here lets the server and the client share one
// decoder, lets tests and the fuzzer drive it with any fragmentation at memory speed, and
// lets the connection hand body bytes to its delegate as views of its read buffer.
//
// Use: keep unconsumed bytes in a buffer; call step(buffered) until it returns `done`:
//   - data:      `data` is body bytes (a view into the input), at most max_data of them;
//   - need_more: everything useful was consumed; append more input and call again;
//   - done:      the last chunk and the trailer section were read; `consumed` ends there.
// `consumed` bytes of the input are used up by each step (drop them before the next call).
// An error (bad size line, missing CRLF after data, a bare CR, a bare LF unless the policy
// allows it, body or trailers too large) is final, and comes as soon as the bytes that
// make it one are here.
// The decoder never consumes part of a line: a size or trailer line is taken whole, so
// the result is the same however the input is split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squall/http_parse.h"

namespace squall {

struct ChunkedDecoderLimits {
  std::uint64_t max_body = std::uint64_t{1} << 62;             // sum of chunk sizes -> 413 beyond
  std::size_t max_extensions = 256;                            // bytes of chunk-ext per line -> 400 beyond
  std::size_t max_trailer_bytes = kDefaultMaxHeaderSize;       // trailer section -> 431 beyond
  std::size_t max_trailer_fields = kDefaultMaxTrailerFields;  // trailer fields -> 431 beyond
  HeadLimits trailer_limits;  // validation of each trailer field; its policy also rules
                              // line ends (bare LF)
};

struct ChunkedStep {
  enum class Kind { need_more, data, done };
  Kind kind = Kind::need_more;
  std::size_t consumed = 0;  // input bytes used up by this step (including `data`)
  std::string_view data;     // Kind::data only: body bytes, a view into the input
};

class ChunkedDecoder {
 public:
  // Longest chunk-size line: 16 hex digits and leading zeros, extensions, CRLF.
  static constexpr std::size_t kMaxSizeLine = 64 + 2;

  explicit ChunkedDecoder(const ChunkedDecoderLimits& limits = {}) : limits_(limits) {}

  // One step over `input` (the bytes not yet consumed); see the header comment.
  // max_data >= 1 bounds the size of a data piece.
  ParseResult<ChunkedStep> step(std::string_view input, std::size_t max_data);

  bool done() const { return state_ == State::done; }
  std::uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class State { size_line, data, data_end, trailer, done };

  std::size_t max_size_line() const { return kMaxSizeLine + limits_.max_extensions; }
  bool allow_lf() const { return limits_.trailer_limits.policy.allow_bare_lf; }

  ChunkedDecoderLimits limits_;
  State state_ = State::size_line;
  std::uint64_t chunk_remaining_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_fields_ = 0;
};

}  // namespace squall
