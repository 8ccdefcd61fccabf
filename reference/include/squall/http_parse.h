// HTTP/1.x message framing parsers: start lines, header blocks, whole heads,
// Content-Length, Transfer-Encoding and chunk-size lines (the parsing half of Tornado's
// `httputil` and `http1connection`, as pure functions).
//
// What it is for: `HTTP1Connection` buffers what it reads from its stream, finds the end
// of a head itself (through the first "\r?\n\r?\n") and hands the head here; a chunked
// body goes through ChunkedDecoder (chunked_decoder.h), which parses each chunk-size line
// here. The client parses an interim (1xx) head the same way. Nothing here touches a
// socket or a loop, so the unit tests, fuzzers and benchmarks call these functions directly.
//
// Why it looks like this: parsing is where request smuggling and crashes live, so each
// function is strict (RFC 9110/9112 grammar; Tornado's leniencies only where the RFC
// allows them), bounded (limits below) and total: it returns either a value or a
// ParseError carrying the status the server should answer with (400, 413, 414, 431,
// 505) and a short static reason for the log. Results are views into the caller's bytes
// (zero-copy); a well-formed line is parsed in one pass that both validates it and finds
// its end (16 bytes at a time with SSE2), and the only allocation is the output vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "squall/http_headers.h"

namespace squall {

// Why a message was rejected: the status to answer with and a short static reason.
struct ParseError {
  int status = 400;
  std::string_view reason;
  friend bool operator==(const ParseError&, const ParseError&) = default;

  // Throws it as an Error(reason, status): how the connection and the client turn a
  // parser's verdict into their exception (HTTPInputError, http1connection.h).
  template <class Error>
  [[noreturn]] void raise() const {
    throw Error(std::string(reason), status);
  }
};

// A value or a ParseError (std::expected is C++23).
template <class T>
class [[nodiscard]] ParseResult {
 public:
  ParseResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  ParseResult(ParseError error) : state_(std::in_place_index<1>, error) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  // Throws std::bad_variant_access when called on an error.
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // Throws std::bad_variant_access when called on a value.
  const ParseError& error() const { return std::get<1>(state_); }
  // On an error, throws it as an Error (ParseError::raise); a value is left alone:
  //   parsed.throw_if_error<HTTPInputError>();
  template <class Error>
  void throw_if_error() const {
    if (!ok()) error().template raise<Error>();
  }

 private:
  std::variant<T, ParseError> state_;
};

template <>
class [[nodiscard]] ParseResult<void> {
 public:
  ParseResult() = default;
  ParseResult(ParseError error) : error_(error) {}
  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const ParseError& error() const { return error_.value(); }
  template <class Error>
  void throw_if_error() const {
    if (!ok()) error().template raise<Error>();
  }

 private:
  std::optional<ParseError> error_;
};

// Optional whitespace (OWS, RFC 9110 §5.6.3): SP and HTAB.
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
// `s` without OWS at either end.
std::string_view trim_ows(std::string_view s) noexcept;

// Calls visit(element) for each element of a comma-separated field value (RFC 9110
// §5.6.1: "gzip, chunked"), in order, each trimmed of OWS. Empty elements are visited
// too: the list rule ignores them, a strict parser may reject them. visit returns false to
// stop; the result says whether every element was visited. Allocates nothing.
template <class Visit>
bool for_each_list_element(std::string_view list, Visit&& visit) {
  for (std::size_t pos = 0;;) {
    const std::size_t comma = list.find(',', pos);
    const std::size_t end = comma == std::string_view::npos ? list.size() : comma;
    if (!visit(trim_ows(list.substr(pos, end - pos)))) return false;
    if (comma == std::string_view::npos) return true;
    pos = comma + 1;
  }
}

// RFC 9110 §5.6.2 token characters.
bool is_tchar(char c) noexcept;
bool is_token(std::string_view s) noexcept;
// RFC 9110 §5.5 field-value bytes: no CTL except HTAB, no DEL; obs-text allowed.
// Use it before sending a header value (response splitting).
bool is_valid_field_value(std::string_view value) noexcept;
// RFC 9110 §7.2 / RFC 3986 §3.2.2: `uri-host [ ":" port ]`, where uri-host is a reg-name
// (unreserved, pct-encoded, sub-delims; an IPv4 address is one), or an IP-literal in
// brackets; port is digits. The form of a Host field value (which may be empty) and, with
// `require_port`, of CONNECT's authority-form target. No userinfo, path, spaces or lists.
bool is_valid_authority(std::string_view value, bool require_port = false) noexcept;
// The same verdict for a value lying inside `readable` (the head it was parsed from), which
// the check may read anywhere in: the usual Host (letters, digits, '.', '-', then an
// optional ":port"; up to 16 bytes) is checked with one 16-byte load, anything else as
// is_valid_authority does.
bool is_valid_authority_in(std::string_view value, std::string_view readable, bool require_port = false) noexcept;

// Where RFC 9112 lets a recipient choose, which side the parsers take. Default strict
// (as Tornado 6.5 and current nginx/h2o/Apache hardening); lenient() is Tornado 6.2's
// behaviour. Each flag allows one leniency; every one is false by default.
struct ParsePolicy {
  // Bare LF as a line terminator (RFC 9112 §2.2 MAY), in heads, chunk lines, after chunk
  // data and in trailers. A bare CR is refused (400) under either policy.
  bool allow_bare_lf = false;
  // Content-Length as a list / repeated field of identical values ("5, 5", RFC 9110 §8.6
  // MAY). Strict: exactly one 1*DIGIT. (Leading zeros are valid 1*DIGIT: always accepted.)
  bool allow_lenient_content_length = false;
  // Field names that differ from Content-Length or Transfer-Encoding only by punctuation
  // ("Transfer_Encoding", "Content.Length", "ContentLength"): strict refuses them (400),
  // since an intermediary may normalise them into the framing field.
  bool allow_framing_lookalikes = false;
  // In the request-target: percent-encoded controls (%00-%1f, %7f), a backslash, a
  // fragment ("#"). Strict: 400.
  bool allow_odd_target = false;
  // A method longer than max_method_length (strict: 501, RFC 9112 §3).
  bool allow_long_method = false;
  // An expectation other than 100-continue (strict: 417, RFC 9110 §10.1.1).
  bool allow_unknown_expectation = false;
  // Parameters on chunked ("chunked;q=1", RFC 9112 §7.1: SHOULD be an error) and empty
  // list elements in Transfer-Encoding (", chunked"). Strict: 400.
  bool allow_lenient_transfer_encoding = false;

  static constexpr std::size_t max_method_length = 32;

  static constexpr ParsePolicy strict() noexcept { return {}; }
  static constexpr ParsePolicy lenient() noexcept { return {true, true, true, true, true, true, true}; }
  friend bool operator==(const ParsePolicy&, const ParsePolicy&) = default;
};

// The default limits of an HTTP message, one constant each wherever they apply (the
// server's connection parameters, the client's requests, the parsers): Tornado's 64 KiB
// head (max_header_size; no single line of it is longer) and 100 MiB body (max_body_size),
// and at most 100 trailer fields.
inline constexpr std::size_t kDefaultMaxHeaderSize = 64 * 1024;
inline constexpr std::size_t kDefaultMaxBodySize = 100 * 1024 * 1024;
inline constexpr std::size_t kDefaultMaxTrailerFields = 100;

// Bounds and policies for parsing a message head.
struct HeadLimits {
  std::size_t max_fields = 256;                        // more field lines -> 431
  std::size_t max_field_line = kDefaultMaxHeaderSize;  // one longer field line -> 431
  std::size_t max_start_line = kDefaultMaxHeaderSize;  // longer request line -> 414 (status line: 400)
  bool allow_obs_text_in_target = false;  // bytes >= 0x80 in the request-target
  // RFC 9112 §5.2: servers reject obs-fold (400); user agents must unfold it. When set,
  // a folded value's view spans its continuation lines; see unfold_field_value().
  bool unfold_obs_fold = false;
  ParsePolicy policy;  // strict by default
};

struct RequestLine {
  std::string_view method;   // a token, case-sensitive
  std::string_view target;   // as sent, not decoded
  std::string_view version;  // "HTTP/1.0", "HTTP/1.1" (any HTTP/1.x is accepted)
  int minor = 1;             // the x in HTTP/1.x
};

struct ResponseLine {
  std::string_view version;
  int code = 0;            // 100..999
  std::string_view reason;  // may be empty
  int minor = 1;
};

struct RequestHead {
  RequestLine start_line;
  std::vector<HeaderField> headers;  // in order, names as sent, views into the head
};

struct ResponseHead {
  ResponseLine start_line;  // views into the head
  HTTPHeaders headers;      // owning; obs-fold unfolded as RFC 9112 §5.2 requires
};

// "GET /path HTTP/1.1" (no line terminator). 400 for bad syntax, 414 when longer than
// limits.max_start_line, 505 for a well-formed version other than HTTP/1.x; under the
// strict policy 501 for a method longer than ParsePolicy::max_method_length and 400 for
// a target holding %00-%1f, %7f, a backslash or a fragment. The target
// must be in one of the forms of RFC 9112 §3.2: origin-form ("/..."), absolute-form
// ("scheme://..."), authority-form ("host:port") for CONNECT only, or asterisk-form ("*")
// for OPTIONS only; anything else is a 400.
ParseResult<RequestLine> parse_request_line(std::string_view line, const HeadLimits& limits = {});

// "HTTP/1.1 200 OK" (no line terminator); "HTTP/1.1 204" without the SP is tolerated.
ParseResult<ResponseLine> parse_response_line(std::string_view line);

// Field lines, each ending in CRLF (or bare LF with policy.allow_bare_lf; the last
// terminator is optional), up to an optional empty line which must be the end of
// `block`. Appends to `out`. Strict: a name that differs from Content-Length or
// Transfer-Encoding only by punctuation is a 400.
ParseResult<void> parse_header_block(std::string_view block, std::vector<HeaderField>& out,
                                     const HeadLimits& limits = {});
ParseResult<std::vector<HeaderField>> parse_header_block(std::string_view block,
                                                         const HeadLimits& limits = {});
// The same into an owning HTTPHeaders (values unfolded if limits.unfold_obs_fold).
ParseResult<HTTPHeaders> parse_headers(std::string_view block, const HeadLimits& limits = {});

// Joins the lines of a value captured with unfold_obs_fold: each line break and the
// whitespace around it become one SP ("a\r\n  b" -> "a b").
std::string unfold_field_value(std::string_view value);

// A whole request head as read through the blank line: empty lines before the request
// line are skipped (RFC 9112 §2.2); a head of only empty lines is a 400 "no request line".
// A bare LF (strict policy) or a bare CR (either policy) anywhere in it is a 400.
ParseResult<RequestHead> parse_request_head(std::string_view head, const HeadLimits& limits = {});
// The same with the fields put into caller-owned storage (cleared first): a connection
// parsing request after request reuses one vector and the parse allocates nothing.
ParseResult<RequestLine> parse_request_head(std::string_view head, std::vector<HeaderField>& fields,
                                            const HeadLimits& limits = {});
// The length of the head at the start of `buffered` when it is the usual kind: its first
// byte starts the start line, every line ends in CRLF, and the blank line ending it is in
// the buffer. Found in one pass (32 bytes at a time with SSE2) that also proves each CR
// followed by LF and each LF preceded by CR. 0 for anything else (blank lines first, a
// bare CR or LF before the end, no end yet): the caller then searches the general way,
// which gives the same length for every head this one accepts.
std::size_t crlf_head_end(std::string_view buffered) noexcept;

// A whole response head (for the client); obs-fold is unfolded and bare LF accepted
// whatever the policy (a client is lenient in what it accepts, as Tornado's).
ParseResult<ResponseHead> parse_response_head(std::string_view head, HeadLimits limits = {});

// Whether a field name differs from "Content-Length" or "Transfer-Encoding" only by
// punctuation (and case) without being it: "Content_Length", "transfer.encoding".
bool is_framing_lookalike(std::string_view name) noexcept;

// Content-Length (RFC 9110 §8.6) from the combined field value (HTTPHeaders::get):
// strict, one 1*DIGIT (leading zeros included: "007" is 7); with
// policy.allow_lenient_content_length also a list of identical values
// ("5, 5" -> 5). Signs, inner spaces, empty values, differing values, or more than
// INT64_MAX -> 400.
ParseResult<std::uint64_t> parse_content_length(std::string_view value, const ParsePolicy& policy = {});

struct TransferEncoding {
  bool chunked = false;           // the final coding is chunked
  std::size_t other_codings = 0;  // codings other than chunked (servers answer 501)
};

// Transfer-Encoding (RFC 9112 §6.1) from the combined field value: a list of codings
// with optional parameters. Bad syntax, no coding, or chunked anywhere but last -> 400;
// strict also: parameters on chunked, empty list elements -> 400.
ParseResult<TransferEncoding> parse_transfer_encoding(std::string_view value, const ParsePolicy& policy = {});

struct ChunkLimits {
  std::uint64_t max_size = std::uint64_t{1} << 62;  // a larger chunk -> 413
  std::size_t max_extensions = 256;                 // bytes of chunk-ext -> 400 beyond
  bool allow_bare_lf = false;                       // a line ending in LF alone
};

// "1A;name=value\r\n" (the CRLF is optional; with allow_bare_lf a bare LF may end it):
// RFC 9112 §7.1 chunk-size [ chunk-ext ].
ParseResult<std::uint64_t> parse_chunk_size_line(std::string_view line,
                                                 const ChunkLimits& limits = {});

namespace detail {

// The byte scans under the head parser, exposed for the tests: the first byte of
// [p, end) outside the class (or end). `portable` picks the plain C++ version; otherwise
// the one the parser uses (SSE2 on x86-64, else the same portable one). The tests check
// that both agree with the grammar on every byte value at every position.
enum class ScanClass {
  token,        // RFC 9110 tchar
  field_value,  // HTAB, SP, VCHAR, obs-text (stops at CR, LF, other CTLs, DEL)
  target,       // 0x21-0x7e (stops at SP, CTLs, DEL, obs-text)
  plain_target,  // 0x21-0x7e but '%', '\\', '#' (also stops at those three)
};
const char* scan(ScanClass cls, const char* p, const char* end, bool portable) noexcept;
// is_valid_authority_in, `portable`: is_valid_authority itself.
bool is_valid_authority_in(std::string_view value, std::string_view readable, bool require_port,
                           bool portable) noexcept;
// crlf_head_end, `portable` as for scan.
std::size_t crlf_head_end(std::string_view buffered, bool portable) noexcept;

}  // namespace detail

}  // namespace squall
