// header: the request head as the server parses it (parse_request_head, the entry point
// HTTP1Connection uses), the response head as the client parses it
// (parse_response_head), and the framing-value parsers the connection applies to what
// they return (Content-Length, Transfer-Encoding, chunk-size lines). Limits are chosen
// by the fuzzer. Invariants:
//   - every view in a result points inside the input;
//   - field counts and line lengths honour the limits;
//   - an accepted request head re-serialised as "method SP target SP version CRLF
//     (name: value CRLF)* CRLF" parses again to the same start line and fields;
//   - an error status is one of 400, 413, 414, 431, 501, 505;
//   - the policy (flags & 16: lenient, else strict) only adds refusals: a head the strict
//     policy accepts, the lenient one accepts the same way, and it holds no bare LF;
//   - the connection's fast paths agree with their definitions: crlf_head_end (both
//     versions) ends the head at the first CRLFCRLF with every CR and LF before it paired,
//     or says 0; is_valid_authority_in on each field value in the head (the Host check)
//     equals is_valid_authority.
//
// Input layout: [flags][max_fields][max_field_line: 2 bytes] then the head.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/http_parse.h"
#include "squall/httputil.h"

namespace {

using namespace squall;
using squall_fuzz::FuzzInput;

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool valid_status(int s) { return s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505; }

void check_framing_values(const std::vector<HeaderField>& fields, const ParsePolicy& policy) {
  for (const HeaderField& f : fields) {
    if (header_name_equals(f.name, "Content-Length")) {
      ParseResult<uint64_t> cl = parse_content_length(f.value, policy);
      if (!cl) FUZZ_CHECK(valid_status(cl.error().status));
      ParseResult<uint64_t> lenient = parse_content_length(f.value, ParsePolicy::lenient());
      if (cl) FUZZ_CHECK(lenient.ok() && *lenient == *cl);
    } else if (header_name_equals(f.name, "Transfer-Encoding")) {
      ParseResult<TransferEncoding> te = parse_transfer_encoding(f.value, policy);
      if (!te) FUZZ_CHECK(valid_status(te.error().status));
      ParseResult<TransferEncoding> lenient = parse_transfer_encoding(f.value, ParsePolicy::lenient());
      if (te) FUZZ_CHECK(lenient.ok() && lenient->chunked == te->chunked);
    }
    if (!policy.allow_framing_lookalikes) FUZZ_CHECK(!is_framing_lookalike(f.name));
  }
}

// crlf_head_end's verdict on `head` against its definition (http_parse.h).
void check_crlf_head_end(std::string_view head) {
  const size_t end = crlf_head_end(head);
  FUZZ_CHECK(detail::crlf_head_end(head, /*portable=*/true) == end);
  const size_t blank = head.find("\r\n\r\n");
  bool usual = !head.empty() && head[0] != '\r' && head[0] != '\n' && blank != std::string_view::npos;
  for (size_t i = 0; usual && i < blank + 4; ++i) {
    if (head[i] == '\r') usual = head[i + 1] == '\n';
    if (head[i] == '\n') usual = i > 0 && head[i - 1] == '\r';
  }
  FUZZ_CHECK(end == (usual ? blank + 4 : 0));
}

void check_authority_in(std::string_view value, std::string_view head) {
  for (bool require_port : {false, true}) {
    FUZZ_CHECK(is_valid_authority_in(value, head, require_port) == is_valid_authority(value, require_port));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t flags = in.byte();
  HeadLimits limits;
  limits.allow_obs_text_in_target = flags & 1;
  limits.unfold_obs_fold = flags & 2;
  if (flags & 16) limits.policy = ParsePolicy::lenient();
  if (flags & 4) {
    limits.max_fields = in.range(0, 32);
    limits.max_field_line = in.range(0, 512);
    limits.max_start_line = in.range(0, 512);
  }
  std::string_view head = in.rest();

  // Request head, as the server sees it.
  ParseResult<RequestHead> request = parse_request_head(head, limits);
  if (request) {
    const RequestLine& line = request->start_line;
    FUZZ_CHECK(inside(line.method, head) && inside(line.target, head) && inside(line.version, head));
    FUZZ_CHECK(!line.method.empty() && is_token(line.method));
    FUZZ_CHECK(line.version.size() == 8 && line.version.substr(0, 7) == "HTTP/1.");
    FUZZ_CHECK(line.target.size() <= limits.max_start_line);
    FUZZ_CHECK(request->headers.size() <= limits.max_fields);
    for (const HeaderField& f : request->headers) {
      FUZZ_CHECK(inside(f.name, head) && inside(f.value, head));
      FUZZ_CHECK(is_token(f.name));
      if (!limits.unfold_obs_fold) FUZZ_CHECK(is_valid_field_value(f.value));
      FUZZ_CHECK(f.value.empty() || (f.value.front() != ' ' && f.value.back() != ' '));
    }
    check_framing_values(request->headers, limits.policy);
    for (const HeaderField& f : request->headers) check_authority_in(f.value, head);
    if (!limits.policy.allow_bare_lf) {
      for (size_t i = head.find('\n'); i != std::string_view::npos; i = head.find('\n', i + 1)) {
        FUZZ_CHECK(i > 0 && head[i - 1] == '\r');
      }
    }
    if (limits.policy != ParsePolicy::lenient()) {
      HeadLimits lenient = limits;
      lenient.policy = ParsePolicy::lenient();
      ParseResult<RequestHead> again = parse_request_head(head, lenient);
      FUZZ_CHECK(again.ok() && again->headers == request->headers && again->start_line.target == line.target);
    }
    if (!limits.unfold_obs_fold) {
      std::string again;
      again.append(line.method).append(" ").append(line.target).append(" ").append(line.version).append("\r\n");
      for (const HeaderField& f : request->headers) again.append(f.name).append(": ").append(f.value).append("\r\n");
      again.append("\r\n");
      HeadLimits relaxed = limits;
      relaxed.max_field_line = 1u << 20;
      relaxed.max_start_line = 1u << 20;
      ParseResult<RequestHead> reparsed = parse_request_head(again, relaxed);
      FUZZ_CHECK(reparsed.ok());
      FUZZ_CHECK(reparsed->start_line.method == line.method && reparsed->start_line.target == line.target &&
                 reparsed->start_line.version == line.version && reparsed->start_line.minor == line.minor);
      FUZZ_CHECK(reparsed->headers == request->headers);
    }
  } else {
    FUZZ_CHECK(valid_status(request.error().status));
    FUZZ_CHECK(!request.error().reason.empty());
  }

  check_crlf_head_end(head);

  // Response head, as the client sees it.
  ParseResult<ResponseHead> response = parse_response_head(head, limits);
  if (response) {
    const ResponseLine& line = response->start_line;
    FUZZ_CHECK(inside(line.version, head) && inside(line.reason, head));
    FUZZ_CHECK(line.code >= 100 && line.code <= 999);
    FUZZ_CHECK(response->headers.size() <= limits.max_fields);
    for (HeaderField f : response->headers) {
      FUZZ_CHECK(is_token(f.name));
      FUZZ_CHECK(f.value.find('\r') == std::string_view::npos && f.value.find('\n') == std::string_view::npos);
    }
  } else {
    FUZZ_CHECK(valid_status(response.error().status));
  }

  // The first line alone, and the whole input as header values and chunk lines.
  std::string_view first = head.substr(0, head.find('\n'));
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  check_authority_in(first, head);
  ParseResult<RequestLine> rl = parse_request_line(first, limits);
  if (rl) FUZZ_CHECK(inside(rl->target, first));
  ParseResult<ResponseLine> sl = parse_response_line(first);
  if (sl) FUZZ_CHECK(sl->code >= 100 && sl->code <= 999);
  ParseResult<uint64_t> cl = parse_content_length(first, limits.policy);
  if (cl) FUZZ_CHECK(!first.empty());
  ParseResult<TransferEncoding> te = parse_transfer_encoding(first, limits.policy);
  (void)te;
  ChunkLimits chunk_limits;
  chunk_limits.allow_bare_lf = limits.policy.allow_bare_lf;
  if (flags & 8) chunk_limits.max_size = flags >> 4;
  ParseResult<uint64_t> chunk = parse_chunk_size_line(head.substr(0, 400), chunk_limits);
  if (chunk) FUZZ_CHECK(*chunk <= chunk_limits.max_size);
  else FUZZ_CHECK(valid_status(chunk.error().status));
  std::vector<HeaderField> fields;
  ParseResult<void> block = parse_header_block(head, fields, limits);
  if (block) FUZZ_CHECK(fields.size() <= limits.max_fields);
  return 0;
}
