#include "squall/chunked_decoder.h"

#include <algorithm>
#include <vector>

namespace squall {

namespace {

constexpr std::string_view kCRLF = "\r\n";

// The line at the start of `input` with its terminator (CRLF, or a bare LF when
// allow_lf), an empty view if the line is not complete yet, or an error: 400 for a bare
// LF (not allowed) or a bare CR (never), `status` if the line is (or must be) longer than
// max_line bytes. A line ending is judged as soon as its bytes are here, so no line
// ending leaves the decoder waiting for bytes that cannot make it valid.
ParseResult<std::string_view> take_line(std::string_view input, std::size_t max_line, int status,
                                        std::string_view too_long, bool allow_lf) {
  const std::string_view window = input.substr(0, max_line);
  const std::size_t lf = window.find('\n');
  const std::size_t cr = window.substr(0, lf).find('\r');
  // Judged within the window only: a CR as the window's last byte is "too long" below,
  // whatever follows it, so the outcome does not depend on how the input was split.
  if (cr != std::string_view::npos && cr + 1 < window.size() && input[cr + 1] != '\n') {
    return ParseError{400, "bare CR in chunked framing"};
  }
  if (lf != std::string_view::npos) {
    if (lf > 0 && input[lf - 1] == '\r') return input.substr(0, lf + 1);
    if (!allow_lf) return ParseError{400, "bare LF in chunked framing"};
    return input.substr(0, lf + 1);
  }
  // No line end within max_line bytes: too long once that many bytes are here (a CR as the
  // very last byte allowed cannot be completed within the bound either).
  if (input.size() >= max_line) return ParseError{status, too_long};
  return std::string_view{};
}

bool is_line_end(std::string_view line, bool allow_lf) { return line == kCRLF || (allow_lf && line == "\n"); }

}  // namespace

ParseResult<ChunkedStep> ChunkedDecoder::step(std::string_view input, std::size_t max_data) {
  ChunkedStep out;
  std::string_view rest = input;
  auto consumed = [&] { return static_cast<std::size_t>(rest.data() - input.data()); };
  for (;;) {
    switch (state_) {
      case State::size_line: {
        ParseResult<std::string_view> line =
            take_line(rest, max_size_line(), 400, "Line too long in chunked framing", allow_lf());
        if (!line) return line.error();
        if (line->empty()) {
          out.consumed = consumed();
          return out;  // need_more
        }
        ChunkLimits chunk_limits;
        chunk_limits.max_size = limits_.max_body;
        chunk_limits.max_extensions = limits_.max_extensions;
        chunk_limits.allow_bare_lf = allow_lf();
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
        // Judged byte by byte: a wrong first byte is an error at once.
        if (!rest.empty() && rest.front() == '\n' && allow_lf()) {
          rest.remove_prefix(1);
          state_ = State::size_line;
          break;
        }
        if (!rest.empty() && rest.front() != '\r') return ParseError{400, "Chunk data not followed by CRLF"};
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
        ParseResult<std::string_view> line =
            take_line(rest, room, 431, "Line too long in chunked framing", allow_lf());
        if (!line) return line.error();
        if (line->empty()) {
          out.consumed = consumed();
          return out;  // need_more
        }
        rest.remove_prefix(line->size());
        if (is_line_end(*line, allow_lf())) {
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
