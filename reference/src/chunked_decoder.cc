#include "squall/chunked_decoder.h"

#include <algorithm>
#include <vector>

namespace squall {

namespace {

constexpr std::string_view kCRLF = "\r\n";

// The CRLF-terminated line at the start of `input` (with its CRLF), an empty view if the
// line is not complete yet, or an error with `status` if it is (or must be) longer than
// max_line bytes.
ParseResult<std::string_view> take_line(std::string_view input, std::size_t max_line, int status,
                                        std::string_view too_long) {
  std::size_t eol = input.substr(0, max_line).find(kCRLF);
  if (eol != std::string_view::npos && eol + 2 <= max_line) return input.substr(0, eol + 2);
  // No CRLF within max_line bytes: too long once that many bytes are here (a CR as the
  // very last byte allowed cannot be completed within the bound either).
  if (input.size() >= max_line) return ParseError{status, too_long};
  return std::string_view{};
}

}  // namespace

ParseResult<ChunkedStep> ChunkedDecoder::step(std::string_view input, std::size_t max_data) {
  ChunkedStep out;
  std::string_view rest = input;
  auto consumed = [&] { return static_cast<std::size_t>(rest.data() - input.data()); };
  for (;;) {
    switch (state_) {
      case State::size_line: {
        ParseResult<std::string_view> line =
            take_line(rest, max_size_line(), 400, "Line too long in chunked framing");
        if (!line) return line.error();
        if (line->empty()) {
          out.consumed = consumed();
          return out;  // need_more
        }
        ChunkLimits chunk_limits;
        chunk_limits.max_size = limits_.max_body;
        chunk_limits.max_extensions = limits_.max_extensions;
        ParseResult<std::uint64_t> size = parse_chunk_size_line(*line, chunk_limits);
        if (!size) return size.error();
        rest.remove_prefix(line->size());
        if (*size == 0) {
          state_ = State::trailer;
          break;
        }
        if (*size > limits_.max_body - body_bytes_) return ParseError{413, "Chunked body too large"};
        body_bytes_ += *size;
        chunk_remaining_ = *size;
        state_ = State::data;
        break;
      }
      case State::data: {
        if (rest.empty()) {
          out.consumed = consumed();
          return out;  // need_more
        }
        std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>({chunk_remaining_, rest.size(), std::max<std::size_t>(max_data, 1)}));
        out.kind = ChunkedStep::Kind::data;
        out.data = rest.substr(0, take);
        rest.remove_prefix(take);
        chunk_remaining_ -= take;
        if (chunk_remaining_ == 0) state_ = State::data_end;
        out.consumed = consumed();
        return out;
      }
      case State::data_end:
        if (rest.size() < 2) {
          out.consumed = consumed();
          return out;  // need_more
        }
        if (!rest.starts_with(kCRLF)) return ParseError{400, "Chunk data not followed by CRLF"};
        rest.remove_prefix(2);
        state_ = State::size_line;
        break;
      case State::trailer: {
        // Trailer fields are validated like header fields, bounded, then dropped.
        std::size_t room = std::max<std::size_t>(
            limits_.max_trailer_bytes > trailer_bytes_ ? limits_.max_trailer_bytes - trailer_bytes_ : 0, 2);
        ParseResult<std::string_view> line = take_line(rest, room, 431, "Line too long in chunked framing");
        if (!line) return line.error();
        if (line->empty()) {
          out.consumed = consumed();
          return out;  // need_more
        }
        rest.remove_prefix(line->size());
        if (*line == kCRLF) {
          state_ = State::done;
          break;
        }
        trailer_bytes_ += line->size();
        if (++trailer_fields_ > limits_.max_trailer_fields) return ParseError{431, "Too many trailer fields"};
        std::vector<HeaderField> fields;
        ParseResult<void> parsed = parse_header_block(*line, fields, limits_.trailer_limits);
        if (!parsed) return parsed.error();
        break;
      }
      case State::done:
        out.kind = ChunkedStep::Kind::done;
        out.consumed = consumed();
        return out;
    }
  }
}

}  // namespace squall
