#include "squall/http_parse.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace squall {
namespace {

using namespace std::string_view_literals;

// Status of a failed parse, or 0 when the parse succeeded.
template <class T>
int status_of(const ParseResult<T>& r) {
  return r.ok() ? 0 : r.error().status;
}

int request_head_status(std::string_view head, const HeadLimits& limits = {}) {
  return status_of(parse_request_head(head, limits));
}

int block_status(std::string_view block, const HeadLimits& limits = {}) {
  return status_of(parse_header_block(block, limits));
}

// HeadLimits with the lenient policy (Tornado 6.2's side of RFC 9112's latitude).
HeadLimits lenient_limits() {
  HeadLimits limits;
  limits.policy = ParsePolicy::lenient();
  return limits;
}

constexpr ParsePolicy kLenient = ParsePolicy::lenient();

// ---- request line -------------------------------------------------------------------

TEST(RequestLine, ParsesMethodTargetAndVersion) {
  auto r = parse_request_line("GET /a?b=c HTTP/1.1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/a?b=c");
  EXPECT_EQ(r->version, "HTTP/1.1");
  EXPECT_EQ(r->minor, 1);
}

TEST(RequestLine, AcceptsHttp10AndExtensionMethods) {
  auto r = parse_request_line("M-SEARCH /ssdp HTTP/1.0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "M-SEARCH");
  EXPECT_EQ(r->target, "/ssdp");
  EXPECT_EQ(r->minor, 0);
}

TEST(RequestLine, AcceptsAbsoluteFormTarget) {
  auto r = parse_request_line("GET http://127.0.0.1/plaintext?x=1 HTTP/1.1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target, "http://127.0.0.1/plaintext?x=1");
  EXPECT_TRUE(parse_request_line("GET https://example.com HTTP/1.1").ok());
  EXPECT_TRUE(parse_request_line("GET svn+ssh.1-x://h/ HTTP/1.1").ok());
}

TEST(RequestLine, AcceptsAsteriskFormOnlyForOptions) {
  auto r = parse_request_line("OPTIONS * HTTP/1.1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target, "*");
  EXPECT_EQ(status_of(parse_request_line("GET * HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("M-SEARCH * HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("OPTIONS ** HTTP/1.1")), 400);
}

TEST(RequestLine, AcceptsAuthorityFormOnlyForConnect) {
  EXPECT_TRUE(parse_request_line("CONNECT example.com:443 HTTP/1.1").ok());
  EXPECT_TRUE(parse_request_line("CONNECT [::1]:443 HTTP/1.1").ok());
  EXPECT_EQ(status_of(parse_request_line("CONNECT example.com HTTP/1.1")), 400);  // port required
  EXPECT_EQ(status_of(parse_request_line("CONNECT / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("CONNECT http://example.com/ HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET 127.0.0.1:80 HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET localhost:80 HTTP/1.1")), 400);
}

TEST(RequestLine, RejectsTargetOfNoKnownFormWith400) {
  EXPECT_EQ(status_of(parse_request_line("GET foo HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET ?x=1 HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET 1http://h/ HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET ://h/ HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET http:/h HTTP/1.1")), 400);
}

TEST(RequestLine, AcceptsHigherMinorVersion) {
  auto r = parse_request_line("GET / HTTP/1.7");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, "HTTP/1.7");
  EXPECT_EQ(r->minor, 7);
}

TEST(RequestLine, RejectsDoubleSpaceWith400) {
  EXPECT_EQ(status_of(parse_request_line("GET  / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /  HTTP/1.1")), 400);
}

TEST(RequestLine, RejectsTabSeparatorWith400) {
  EXPECT_EQ(status_of(parse_request_line("GET\t/\tHTTP/1.1")), 400);
}

TEST(RequestLine, RejectsLeadingOrTrailingSpaceWith400) {
  EXPECT_EQ(status_of(parse_request_line(" GET / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET / HTTP/1.1 ")), 400);
}

TEST(RequestLine, RejectsMissingPartsWith400) {
  EXPECT_EQ(status_of(parse_request_line("")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /")), 400);  // HTTP/0.9 style
  EXPECT_EQ(status_of(parse_request_line("GET / ")), 400);
}

TEST(RequestLine, RejectsNonTokenMethodWith400) {
  EXPECT_EQ(status_of(parse_request_line("G(T / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GE\x01T / HTTP/1.1"sv)), 400);
  EXPECT_EQ(status_of(parse_request_line("G\xC3\xA9T / HTTP/1.1")), 400);
}

TEST(RequestLine, RejectsControlCharactersInTargetWith400) {
  EXPECT_EQ(status_of(parse_request_line("GET /a\x01z HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /a\x7fz HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /a\tz HTTP/1.1")), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /a\0z HTTP/1.1"sv)), 400);
  EXPECT_EQ(status_of(parse_request_line("GET /a\rz HTTP/1.1")), 400);
}

TEST(RequestLine, RejectsNonAsciiTargetUnlessAllowed) {
  EXPECT_EQ(status_of(parse_request_line("GET /caf\xC3\xA9 HTTP/1.1")), 400);
  HeadLimits lenient;
  lenient.allow_obs_text_in_target = true;
  auto r = parse_request_line("GET /caf\xC3\xA9 HTTP/1.1", lenient);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target, "/caf\xC3\xA9");
}

TEST(RequestLine, RejectsOtherMajorVersionsWith505) {
  EXPECT_EQ(status_of(parse_request_line("GET / HTTP/2.0")), 505);
  EXPECT_EQ(status_of(parse_request_line("GET / HTTP/3.0")), 505);
  EXPECT_EQ(status_of(parse_request_line("GET / HTTP/0.9")), 505);
}

TEST(RequestLine, RejectsMalformedVersionWith400) {
  for (std::string_view v : {"HTTP/1", "HTTP/1.", "HTTP/1.10", "HTTP/11.1", "http/1.1", "HTTP/1,1", "HTTP/a.b",
                             "HTTPS/1.1", "HTTP/1.1\r", "HTTP/2", "HTTP 1.1"}) {
    EXPECT_EQ(status_of(parse_request_line("GET / " + std::string(v))), 400) << v;
  }
}

TEST(Authority, AcceptsHostAndOptionalPort) {
  for (std::string_view host : {"example.com", "127.0.0.1", "127.0.0.1:8080", "Example.COM:80", "[::1]", "[::1]:8080",
                                "[2001:db8::192.0.2.1]", "[v1.fe80::a+en1]", "a%2Db", "", "host:", "x_y~z!$&'()*+;="}) {
    EXPECT_TRUE(is_valid_authority(host)) << host;
  }
}

TEST(Authority, RejectsWhatIsNotUriHostAndPort) {
  for (std::string_view host : {"exa mple.com", "a.example, b.example", "user@127.0.0.1", "127.0.0.1:http",
                                "127.0.0.1/evil", "h?q", "h#f", "a:1:2", "[::1", "[zz::1]", "[::1]x", "::1", "a%4", "a%zz",
                                "h\t", "\xC3\xA9"}) {
    EXPECT_FALSE(is_valid_authority(host)) << host;
  }
}

TEST(Authority, RequirePortNeedsHostAndDigits) {
  EXPECT_TRUE(is_valid_authority("example.com:443", true));
  EXPECT_FALSE(is_valid_authority("example.com", true));
  EXPECT_FALSE(is_valid_authority("example.com:", true));
  EXPECT_FALSE(is_valid_authority(":443", true));
}

// The reg-name branch scans the value once up to the ':' before the port: a ':', '%' or
// other byte anywhere in host or port gets the verdict of "host before the last ':'".
TEST(Authority, OnePassScanAgreesWithTheLastColonSplit) {
  for (std::string_view host : {":80", ":", "h%41:80", "%41%42", "h:", "h.example:0080", "a-b.c_d~e:65535"}) {
    EXPECT_TRUE(is_valid_authority(host)) << host;
  }
  for (std::string_view host : {"h%4:80", "h%:1", "h%4", "h@:80", "h:8 0", "h:80x", "h::80", "h:80:", "h[:1",
                                "h:%38", "h/:80"}) {
    EXPECT_FALSE(is_valid_authority(host)) << host;
  }
  EXPECT_FALSE(is_valid_authority("h%41:", true));
  EXPECT_TRUE(is_valid_authority("h%41:1", true));
}

// is_valid_authority_in reads the 16 bytes at the value or the 16 ending with it: every
// value over a mixed alphabet (the fast path's bytes, ':', and bytes that must take the
// general check: '[', '%', '_', '@', SP, obs-text, DEL...), with room after it, with room
// before it, and alone, gets is_valid_authority's verdict, with and without require_port.
void expect_same_authority_verdicts(std::string_view value) {
  const std::string pad(20, 'x');
  const std::string after = std::string(value) + pad;
  const std::string before = pad + std::string(value);
  const std::string alone(value);
  for (bool require_port : {false, true}) {
    const bool expected = is_valid_authority(value, require_port);
    const std::string_view in_after(after.data(), value.size());
    const std::string_view in_before(before.data() + pad.size(), value.size());
    ASSERT_EQ(is_valid_authority_in(in_after, after, require_port), expected)
        << testing::PrintToString(alone) << " room after, require_port " << require_port;
    ASSERT_EQ(is_valid_authority_in(in_before, before, require_port), expected)
        << testing::PrintToString(alone) << " room before, require_port " << require_port;
    ASSERT_EQ(is_valid_authority_in(alone, alone, require_port), expected)
        << testing::PrintToString(alone) << " alone, require_port " << require_port;
  }
}

TEST(Authority, InReadableAgreesWithTheGeneralCheck) {
  const std::string_view alphabet("aZ09.-:[]%_@ \x80\x7f/`{", 19);
  std::vector<std::string> values{""};
  for (std::size_t i = 0; i < values.size(); ++i) {  // every value of up to 4 bytes
    if (values[i].size() == 4) break;
    for (char c : alphabet) values.push_back(values[i] + c);
  }
  for (const std::string& v : values) expect_same_authority_verdicts(v);
  // Longer values, mostly of the fast path's bytes, around 16 bytes long.
  std::uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u, state >> 16; };
  const std::string_view usual("ab.-09:");
  for (int i = 0; i < 20000; ++i) {
    std::string v(5 + next() % 14, 'a');
    for (char& c : v) c = next() % 16 == 0 ? alphabet[next() % alphabet.size()] : usual[next() % usual.size()];
    expect_same_authority_verdicts(v);
  }
  for (std::string_view v : {"127.0.0.1:45678", "localhost", "www.example.com", "www.example.com:", ":8080",
                             "example.com:443x", "a-b.example.org:1", "exactly16bytes.x", "exactly16byte:80",
                             "seventeen-bytes.x", "seventeen.byte:80"}) {
    expect_same_authority_verdicts(v);
  }
}

TEST(RequestLine, RejectsOverlongLineWith414) {
  HeadLimits limits;
  limits.max_start_line = 32;
  const std::string line = "GET /" + std::string(40, 'a') + " HTTP/1.1";
  EXPECT_EQ(status_of(parse_request_line(line, limits)), 414);
  EXPECT_TRUE(parse_request_line("GET /short HTTP/1.1", limits).ok());
}

// ---- status line --------------------------------------------------------------------

TEST(ResponseLine, ParsesVersionCodeAndReason) {
  auto r = parse_response_line("HTTP/1.1 404 Not Found");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, "HTTP/1.1");
  EXPECT_EQ(r->code, 404);
  EXPECT_EQ(r->reason, "Not Found");
  EXPECT_EQ(r->minor, 1);
}

TEST(ResponseLine, AcceptsEmptyReasonWithOrWithoutSpace) {
  auto with_space = parse_response_line("HTTP/1.0 204 ");
  ASSERT_TRUE(with_space.ok());
  EXPECT_EQ(with_space->reason, "");
  auto without_space = parse_response_line("HTTP/1.1 204");
  ASSERT_TRUE(without_space.ok());
  EXPECT_EQ(without_space->code, 204);
  EXPECT_EQ(without_space->reason, "");
}

TEST(ResponseLine, KeepsSpacesAndObsTextInReason) {
  auto r = parse_response_line("HTTP/1.1 200 Very  Fine\t\xC3\xA9");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reason, "Very  Fine\t\xC3\xA9");
}

TEST(ResponseLine, RejectsStatusCodeNotThreeDigits) {
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 20 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 2000 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 2x0 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 099 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1  200 OK")), 400);
}

TEST(ResponseLine, RejectsBadVersion) {
  EXPECT_EQ(status_of(parse_response_line("HTTP/2.0 200 OK")), 505);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.x 200 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("ICY 200 OK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1")), 400);
}

TEST(ResponseLine, RejectsControlCharactersInReason) {
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 200 O\rK")), 400);
  EXPECT_EQ(status_of(parse_response_line("HTTP/1.1 200 O\0K"sv)), 400);
}

// ---- header block -------------------------------------------------------------------

TEST(HeaderBlock, ParsesFieldsInOrderWithOriginalNames) {
  auto r = parse_header_block("Host: example.com\r\nx-A: 1\r\nX-a: 2\r\n\r\n");
  ASSERT_TRUE(r.ok());
  const std::vector<HeaderField> expected{{"Host", "example.com"}, {"x-A", "1"}, {"X-a", "2"}};
  EXPECT_EQ(*r, expected);
}

TEST(HeaderBlock, TrimsLeadingAndTrailingWhitespaceFromValues) {
  auto r = parse_header_block("A:   spaced out \t \r\nB:\tx\r\nC:\r\nD: \r\n\r\n");
  ASSERT_TRUE(r.ok());
  const std::vector<HeaderField> expected{{"A", "spaced out"}, {"B", "x"}, {"C", ""}, {"D", ""}};
  EXPECT_EQ(*r, expected);
}

TEST(HeaderBlock, KeepsInnerWhitespaceAndColons) {
  auto r = parse_header_block("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].value, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HeaderBlock, RejectsBareLfLineEndingsByDefault) {
  EXPECT_EQ(parse_header_block("A: 1\nB: 2\r\n\r\n").error(), (ParseError{400, "bare LF line terminator"}));
  EXPECT_EQ(parse_header_block("A: 1\r\nB: 2\r\n\n").error(), (ParseError{400, "bare LF line terminator"}));
  EXPECT_EQ(block_status("A: 1\r\nB: 2\n"), 400);
  EXPECT_EQ(block_status("A: 1\r\n  b\n", [] { HeadLimits l; l.unfold_obs_fold = true; return l; }()), 400);
}

TEST(HeaderBlock, AcceptsBareLfLineEndingsWhenLenient) {
  auto r = parse_header_block("A: 1\nB: 2\r\nC: 3\n\n", lenient_limits());
  ASSERT_TRUE(r.ok());
  const std::vector<HeaderField> expected{{"A", "1"}, {"B", "2"}, {"C", "3"}};
  EXPECT_EQ(*r, expected);
}

TEST(HeaderBlock, AcceptsUnterminatedLastLine) {
  auto r = parse_header_block("A: 1\r\nB: 2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1], (HeaderField{"B", "2"}));
}

TEST(HeaderBlock, AcceptsEmptyBlock) {
  EXPECT_TRUE(parse_header_block("").ok());
  auto r = parse_header_block("\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(HeaderBlock, AcceptsObsTextInValues) {
  auto r = parse_header_block("X-Name: Jos\xC3\xA9\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].value, "Jos\xC3\xA9");
}

TEST(HeaderBlock, RejectsWhitespaceBetweenNameAndColonWith400) {
  EXPECT_EQ(block_status("Host : a\r\n\r\n"), 400);
  EXPECT_EQ(block_status("Host\t: a\r\n\r\n"), 400);
}

TEST(HeaderBlock, RejectsObsFoldWith400) {
  EXPECT_EQ(block_status("A: 1\r\n  continued\r\n\r\n"), 400);
  EXPECT_EQ(block_status("A: 1\r\n\tcontinued\r\n\r\n"), 400);
}

TEST(HeaderBlock, RejectsWhitespaceBeforeFirstFieldWith400) {
  EXPECT_EQ(block_status(" A: 1\r\n\r\n"), 400);
}

TEST(HeaderBlock, RejectsLineWithoutColonWith400) {
  EXPECT_EQ(block_status("NoColonHere\r\n\r\n"), 400);
}

TEST(HeaderBlock, RejectsEmptyOrNonTokenNameWith400) {
  EXPECT_EQ(block_status(": value\r\n"), 400);
  EXPECT_EQ(block_status("Bad(Name): v\r\n"), 400);
  EXPECT_EQ(block_status("Bad/Name: v\r\n"), 400);
  EXPECT_EQ(block_status("Na\xC3\xA9me: v\r\n"), 400);
}

TEST(HeaderBlock, RejectsBareCrInValueWith400) {
  EXPECT_EQ(block_status("A: x\ry\r\n\r\n"), 400);
  EXPECT_EQ(block_status("A: x\r\r\n\r\n"), 400);
}

TEST(HeaderBlock, RejectsNulInValueWith400) {
  EXPECT_EQ(block_status("A: x\0y\r\n\r\n"sv), 400);
}

TEST(HeaderBlock, RejectsOtherControlCharactersInValueWith400) {
  for (char c : {'\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'}) {
    const std::string block = std::string("A: ab") + c + "cd\r\n\r\n";
    EXPECT_EQ(block_status(block), 400) << static_cast<int>(c);
  }
}

TEST(HeaderBlock, RejectsControlCharacterAtEveryOffsetOfLongValue) {
  // Exercises both the word-at-a-time check and the byte-at-a-time tail.
  for (std::size_t len : {7u, 8u, 9u, 16u, 31u}) {
    for (std::size_t at = 0; at < len; ++at) {
      std::string value(len, 'v');
      value[at] = '\x01';
      EXPECT_EQ(block_status("A: " + value + "\r\n"), 400) << len << " " << at;
    }
  }
}

TEST(HeaderBlock, AcceptsTabInsideValue) {
  auto r = parse_header_block("A: a\tb\tc d e f g h i j\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].value, "a\tb\tc d e f g h i j");
}

TEST(HeaderBlock, RejectsDataAfterEmptyLineWith400) {
  EXPECT_EQ(block_status("A: 1\r\n\r\nB: 2\r\n"), 400);
}

TEST(HeaderBlock, RejectsTooManyFieldsWith431) {
  std::string block;
  for (int i = 0; i < 256; ++i) block += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(block_status(block + "\r\n"), 0);
  EXPECT_EQ(block_status(block + "X-Last: v\r\n\r\n"), 431);
}

TEST(HeaderBlock, FieldCountLimitIsConfigurable) {
  HeadLimits limits;
  limits.max_fields = 2;
  EXPECT_EQ(block_status("A: 1\r\nB: 2\r\n", limits), 0);
  EXPECT_EQ(block_status("A: 1\r\nB: 2\r\nC: 3\r\n", limits), 431);
}

TEST(HeaderBlock, RejectsOverlongLineWith431) {
  HeadLimits limits;
  limits.max_field_line = 20;
  EXPECT_EQ(block_status("A: " + std::string(17, 'x') + "\r\n", limits), 0);
  EXPECT_EQ(block_status("A: " + std::string(18, 'x') + "\r\n", limits), 431);
}

TEST(HeaderBlock, AppendingOverloadKeepsExistingFields) {
  std::vector<HeaderField> out{{"Pre", "1"}};
  auto r = parse_header_block("A: 2\r\n", out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], (HeaderField{"A", "2"}));
}

TEST(HeaderBlock, UnfoldsObsFoldWhenAsked) {
  HeadLimits limits;
  limits.unfold_obs_fold = true;
  auto headers = parse_headers("A: one\r\n  two \r\n\tthree\r\nB: x\r\n\r\n", limits);
  ASSERT_TRUE(headers.ok());
  EXPECT_EQ(headers->get_first("A"), "one two three");
  EXPECT_EQ(headers->get_first("B"), "x");
  EXPECT_EQ(status_of(parse_headers(" A: 1\r\n", limits)), 400);
  EXPECT_EQ(status_of(parse_headers("A: 1\r\n  \x01\r\n"sv, limits)), 400);
}

TEST(ParseHeaders, BuildsOwningHeaders) {
  std::string block = "Content-Length: 5\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\n";
  auto h = parse_headers(block);
  block.assign(block.size(), 'x');
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->get("Set-Cookie"), "a,b");
  EXPECT_EQ(h->get_first("content-length"), "5");
}

TEST(UnfoldFieldValue, JoinsLinesWithSingleSpaces) {
  EXPECT_EQ(unfold_field_value("a\r\n  b\n\tc"), "a b c");
  EXPECT_EQ(unfold_field_value("plain"), "plain");
}

// ---- whole request head -----------------------------------------------------------------

TEST(RequestHead, ParsesStartLineAndHeaders) {
  auto r = parse_request_head("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->start_line.method, "POST");
  EXPECT_EQ(r->start_line.target, "/upload");
  const std::vector<HeaderField> expected{{"Host", "h"}, {"Content-Length", "3"}};
  EXPECT_EQ(r->headers, expected);
}

TEST(RequestHead, AcceptsHeadWithoutHeaders) {
  auto r = parse_request_head("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->headers.empty());
}

TEST(RequestHead, AcceptsBareLfThroughoutWhenLenient) {
  auto r = parse_request_head("GET / HTTP/1.1\nHost: h\n\n", lenient_limits());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->start_line.version, "HTTP/1.1");
  EXPECT_EQ(r->headers.size(), 1u);
}

TEST(RequestHead, RejectsBareLfAnywhereByDefault) {
  for (std::string_view head : {"GET / HTTP/1.1\nHost: h\r\n\r\n"sv, "GET / HTTP/1.1\r\nHost: h\n\r\n"sv,
                                "GET / HTTP/1.1\r\nHost: h\r\n\n"sv, "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"sv,
                                "\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"sv, "GET / HTTP/1.1\n"sv, "\n\n"sv}) {
    auto r = parse_request_head(head);
    ASSERT_FALSE(r.ok()) << head;
    EXPECT_EQ(r.error(), (ParseError{400, "bare LF line terminator"})) << head;
  }
}

TEST(RequestHead, RejectsBareCrUnderEitherPolicy) {
  for (const HeadLimits& limits : {HeadLimits{}, lenient_limits()}) {
    for (std::string_view head : {"GET / HTTP/1.1\r\nHost: h\r\n\r\r"sv, "GET / HTTP/1.1\r\nHost: h\r\r\n"sv,
                                  "\nGET /echo HTTP/1.1\r\nHost: 127.0.0.1\nX-Probe: b\n\r\r"sv,
                                  "\r\rGET / HTTP/1.1\r\n\r\n"sv, "GET / HTTP/1.1\r\r\n\r\n"sv}) {
      EXPECT_EQ(request_head_status(head, limits), 400) << head;
    }
  }
}

TEST(RequestHead, SkipsLeadingEmptyLines) {
  auto r = parse_request_head("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->start_line.method, "GET");
  auto lenient = parse_request_head("\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", lenient_limits());
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(lenient->start_line.method, "GET");
}

TEST(RequestHead, RejectsOddTargetsByDefault) {
  for (std::string_view target : {"/a%00b", "/a%1f", "/a%1F", "/%0d%0a", "/a%7f", "/a%7F", "/a\\b", "/a#frag",
                                  "http://h/a%09"}) {
    const std::string head = "GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_EQ(request_head_status(head), 400) << target;
    EXPECT_EQ(status_of(parse_request_line("GET " + std::string(target) + " HTTP/1.1")), 400) << target;
    EXPECT_EQ(request_head_status(head, lenient_limits()), 0) << target;
  }
  for (std::string_view target : {"/a%20b", "/a%2f", "/%7e", "/%", "/%1", "/a%7", "/%2%00"}) {
    const std::string head = "GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_EQ(request_head_status(head), std::string_view(target) == "/%2%00" ? 400 : 0) << target;
  }
}

// A target without backslash, '#' or a '%' escaping a control skips the strict checks; one
// with them goes on to them and gets the same verdict and reason as parse_request_line,
// wherever the bytes sit (in the 16-byte blocks of the scan or its tail, after other '%'s)
// and under either policy.
TEST(RequestHead, TargetsWithPercentBackslashOrHashGetTheStrictChecks) {
  const std::string pad(20, 'p');
  for (std::string_view odd : {"%00", "%7f", "\\", "#f", "%41%1f", "%%7F", "%2%1A"}) {
    for (const std::string& target : {"/" + std::string(odd), "/" + pad + std::string(odd), "/" + std::string(odd) + pad}) {
      const std::string line = "GET " + target + " HTTP/1.1";
      auto head = parse_request_head(line + "\r\nHost: h\r\n\r\n");
      ASSERT_FALSE(head.ok()) << target;
      EXPECT_EQ(head.error(), parse_request_line(line).error()) << target;
      EXPECT_EQ(head.error(), (ParseError{400, "control, backslash or fragment in request target"})) << target;
      const std::string whole = line + "\r\nHost: h\r\n\r\n";
      auto lenient = parse_request_head(whole, lenient_limits());
      ASSERT_TRUE(lenient.ok()) << target;
      EXPECT_EQ(lenient->start_line.target, target);
    }
  }
  for (const std::string& target : {"/" + pad + "%41", "/%41" + pad, "/" + pad + "?q=" + pad, "/" + pad + "\x80",
                                    "/%%%41%2" + pad + "%", "/" + pad + "%1", "/a%7%8%2f%7e" + pad}) {
    HeadLimits limits;
    limits.allow_obs_text_in_target = true;
    const std::string whole = "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n";
    auto head = parse_request_head(whole, limits);
    ASSERT_TRUE(head.ok()) << target;
    EXPECT_EQ(head->start_line.target, target);
    EXPECT_EQ(head->headers.size(), 1u);
  }
}

TEST(RequestHead, OverlongMethodIs501ByDefault) {
  const std::string longest(ParsePolicy::max_method_length, 'M');
  const std::string longer(ParsePolicy::max_method_length + 1, 'M');
  EXPECT_EQ(request_head_status(longest + " / HTTP/1.1\r\n\r\n"), 0);
  EXPECT_EQ(request_head_status(longer + " / HTTP/1.1\r\n\r\n"), 501);
  EXPECT_EQ(status_of(parse_request_line(longer + " / HTTP/1.1")), 501);
  EXPECT_EQ(request_head_status(longer + " / HTTP/1.1\r\n\r\n", lenient_limits()), 0);
}

TEST(HeaderBlock, RejectsFramingLookalikeNamesByDefault) {
  for (std::string_view name : {"Transfer_Encoding", "Content_Length", "content.length", "ContentLength",
                                "Transfer-Encoding-", "-content-length", "TRANSFER__ENCODING"}) {
    const std::string block = std::string(name) + ": chunked\r\n\r\n";
    EXPECT_EQ(parse_header_block(block).error(), (ParseError{400, "header name resembles a framing field"})) << name;
    EXPECT_EQ(block_status(block, lenient_limits()), 0) << name;
    EXPECT_TRUE(is_framing_lookalike(name)) << name;
  }
  // The fields themselves, and names that merely resemble them, are fine.
  for (std::string_view name : {"Transfer-Encoding", "content-length", "Content-Lengths", "X-Content-Length",
                                "Content-Type", "Transfer-Encodings", "TE"}) {
    EXPECT_EQ(block_status(std::string(name) + ": 1\r\n\r\n"), 0) << name;
    EXPECT_FALSE(is_framing_lookalike(name)) << name;
  }
  // The slow path (a line the fast path leaves to the definition) checks too.
  EXPECT_EQ(block_status("Content_Length: 1\r\n  x\r\n\r\n", [] { HeadLimits l; l.unfold_obs_fold = true; return l; }()),
            400);
}

TEST(RequestHead, RejectsHeadOfOnlyEmptyLinesWith400) {
  EXPECT_EQ(request_head_status("\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status(""), 400);
}

TEST(RequestHead, RejectsBareCrBeforeRequestLineWith400) {
  EXPECT_EQ(request_head_status("\rGET / HTTP/1.1\r\n\r\n"), 400);
}

TEST(RequestHead, RejectsWhitespaceBetweenStartLineAndFirstHeaderWith400) {
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400);
}

TEST(RequestHead, PropagatesStatusFromEachPart) {
  EXPECT_EQ(request_head_status("GET / HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\r\nA : b\r\n\r\n"), 400);
  HeadLimits limits;
  limits.max_fields = 1;
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", limits), 431);
  limits.max_start_line = 10;
  EXPECT_EQ(request_head_status("GET /abcdefgh HTTP/1.1\r\n\r\n", limits), 414);
}

TEST(RequestHead, ViewsPointIntoTheInput) {
  const std::string head = "GET /x HTTP/1.1\r\nA: b\r\n\r\n";
  auto r = parse_request_head(head);
  ASSERT_TRUE(r.ok());
  const char* begin = head.data();
  const char* end = head.data() + head.size();
  EXPECT_TRUE(r->start_line.target.data() >= begin && r->start_line.target.data() < end);
  EXPECT_TRUE(r->headers[0].value.data() >= begin && r->headers[0].value.data() < end);
}

TEST(RequestHead, NeverCrashesOnRandomBytes) {
  // A cheap in-test fuzz pass: every prefix and random mutation must give a value or a
  // 4xx/5xx error (the sanitizer build checks memory safety).
  const std::string seed = "POST /a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::mt19937 rng(1234);
  for (int round = 0; round < 20000; ++round) {
    std::string head = seed.substr(0, rng() % (seed.size() + 1));
    for (int k = 0; k < 3 && !head.empty(); ++k) head[rng() % head.size()] = static_cast<char>(rng() % 256);
    auto r = parse_request_head(head);
    if (!r.ok()) {
      EXPECT_GE(r.error().status, 400);
      EXPECT_LT(r.error().status, 600);
      EXPECT_FALSE(r.error().reason.empty());
    }
  }
}

TEST(ResponseHead, ParsesAndUnfoldsHeaders) {
  auto r = parse_response_head("HTTP/1.1 200 OK\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->start_line.code, 200);
  EXPECT_EQ(r->start_line.reason, "OK");
  EXPECT_EQ(r->headers.get_first("content-type"), "text/plain; charset=utf-8");
}

TEST(ResponseHead, RejectsMalformedStatusLine) {
  EXPECT_EQ(status_of(parse_response_head("HTTP/1.1 OK\r\n\r\n")), 400);
  EXPECT_EQ(status_of(parse_response_head("\r\n")), 400);
}

// ---- Content-Length -----------------------------------------------------------------

TEST(ContentLength, ParsesDigits) {
  EXPECT_EQ(parse_content_length("0").value(), 0u);
  EXPECT_EQ(parse_content_length("42").value(), 42u);
  EXPECT_EQ(parse_content_length("9223372036854775807").value(), 9223372036854775807u);
  EXPECT_EQ(parse_content_length("007", kLenient).value(), 7u);
}

// Up to 18 digits take the one-pass path; anything else gets the definition's verdict:
// the longest value, a non-digit after many digits, OWS, an overflow.
TEST(ContentLength, DigitRunsOfEveryLengthUnderEitherPolicy) {
  for (const ParsePolicy& policy : {ParsePolicy{}, kLenient}) {
    std::uint64_t expected = 0;
    std::string digits;
    for (int n = 1; n <= 19; ++n) {
      digits.push_back(static_cast<char>('0' + n % 10));
      expected = expected * 10 + static_cast<std::uint64_t>(n % 10);
      EXPECT_EQ(parse_content_length(digits, policy).value(), expected) << digits;
      EXPECT_EQ(parse_content_length(digits + "a", policy).error(), (ParseError{400, "non-numeric Content-Length"}));
      EXPECT_EQ(parse_content_length("-" + digits, policy).error(), (ParseError{400, "non-numeric Content-Length"}));
    }
    EXPECT_EQ(parse_content_length("9223372036854775808", policy).error(), (ParseError{400, "Content-Length too large"}));
    EXPECT_EQ(parse_content_length("99999999999999999999x", policy).error(),
              (ParseError{400, "non-numeric Content-Length"}));
    EXPECT_EQ(parse_content_length(" 42\t", policy).value(), 42u);
  }
  EXPECT_EQ(parse_content_length("").error(), (ParseError{400, "empty Content-Length"}));
  EXPECT_EQ(parse_content_length("", kLenient).error(), (ParseError{400, "empty Content-Length"}));
}

TEST(ContentLength, AcceptsLeadingZerosUnderEitherPolicy) {  // 1*DIGIT (RFC 9110 §8.6)
  EXPECT_EQ(parse_content_length("007").value(), 7u);
  EXPECT_EQ(parse_content_length("00").value(), 0u);
  EXPECT_EQ(parse_content_length("00", kLenient).value(), 0u);
}

TEST(ContentLength, RejectsListsByDefault) {
  for (std::string_view v : {"5, 5", "5,5", "5 ,\t5", "0,0"}) {
    EXPECT_EQ(parse_content_length(v).error(), (ParseError{400, "Content-Length is a list"})) << v;
  }
}

TEST(ContentLength, AcceptsListOfIdenticalValuesWhenLenient) {
  EXPECT_EQ(parse_content_length("5, 5", kLenient).value(), 5u);
  EXPECT_EQ(parse_content_length("5,5,5", kLenient).value(), 5u);
  EXPECT_EQ(parse_content_length("5 ,\t5", kLenient).value(), 5u);
}

TEST(ContentLength, RejectsDifferingValuesWith400) {
  for (const ParsePolicy& policy : {ParsePolicy{}, kLenient}) {
    EXPECT_EQ(status_of(parse_content_length("5, 6", policy)), 400);
    EXPECT_EQ(status_of(parse_content_length("5, 05", policy)), 400);
  }
}

TEST(ContentLength, RejectsSignsWith400) {
  EXPECT_EQ(status_of(parse_content_length("+5")), 400);
  EXPECT_EQ(status_of(parse_content_length("-5")), 400);
}

TEST(ContentLength, RejectsInnerSpacesAndNonDigitsWith400) {
  EXPECT_EQ(status_of(parse_content_length("1 2")), 400);
  EXPECT_EQ(status_of(parse_content_length("1_000")), 400);
  EXPECT_EQ(status_of(parse_content_length("0x10")), 400);
  EXPECT_EQ(status_of(parse_content_length("5.0")), 400);
  EXPECT_EQ(status_of(parse_content_length("\xD9\xA5")), 400);  // ARABIC-INDIC DIGIT FIVE
}

TEST(ContentLength, RejectsEmptyValuesWith400) {
  EXPECT_EQ(status_of(parse_content_length("")), 400);
  EXPECT_EQ(status_of(parse_content_length(" ")), 400);
  EXPECT_EQ(status_of(parse_content_length("5,")), 400);
  EXPECT_EQ(status_of(parse_content_length(",5")), 400);
  EXPECT_EQ(status_of(parse_content_length("5,,5")), 400);
}

TEST(ContentLength, RejectsOverflowWith400) {
  EXPECT_EQ(status_of(parse_content_length("9223372036854775808")), 400);
  EXPECT_EQ(status_of(parse_content_length("18446744073709551616")), 400);
  EXPECT_EQ(status_of(parse_content_length(std::string(100, '9'))), 400);
}

TEST(ContentLength, RoundTripsEveryPowerOfTen) {
  std::uint64_t n = 1;
  for (int i = 0; i < 19; ++i, n *= 10) {
    EXPECT_EQ(parse_content_length(std::to_string(n)).value(), n);
    EXPECT_EQ(parse_content_length(std::to_string(n - 1)).value(), n - 1);
  }
}

// ---- Transfer-Encoding ----------------------------------------------------------------

TEST(TransferEncodingHeader, RecognisesChunkedCaseInsensitively) {
  auto r = parse_transfer_encoding("Chunked");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->other_codings, 0u);
}

TEST(TransferEncodingHeader, ReportsUnknownCodingsForA501) {
  auto r = parse_transfer_encoding("gzip, chunked");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->other_codings, 1u);
  auto only = parse_transfer_encoding("x-custom");
  ASSERT_TRUE(only.ok());
  EXPECT_FALSE(only->chunked);
  EXPECT_EQ(only->other_codings, 1u);
}

TEST(TransferEncodingHeader, RejectsChunkedNotLastWith400) {
  EXPECT_EQ(status_of(parse_transfer_encoding("chunked, gzip")), 400);
  EXPECT_EQ(status_of(parse_transfer_encoding("chunked,identity")), 400);
}

TEST(TransferEncodingHeader, RejectsChunkedTwiceWith400) {
  // The combined value of two "Transfer-Encoding: chunked" lines.
  EXPECT_EQ(status_of(parse_transfer_encoding("chunked,chunked")), 400);
}

TEST(TransferEncodingHeader, AcceptsEmptyListElementsAndParametersWhenLenient) {
  auto r = parse_transfer_encoding(" , gzip;q=\"a,b\" ; level=9 ,, chunked ,", kLenient);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->other_codings, 1u);
  auto params = parse_transfer_encoding("chunked;q=1", kLenient);
  ASSERT_TRUE(params.ok());
  EXPECT_TRUE(params->chunked);
}

TEST(TransferEncodingHeader, AcceptsParametersOnOtherCodingsByDefault) {
  auto r = parse_transfer_encoding("gzip;q=\"a,b\" ; level=9, chunked");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->other_codings, 1u);
}

TEST(TransferEncodingHeader, RejectsEmptyElementsAndChunkedParametersByDefault) {
  for (std::string_view v : {", chunked", "chunked,", "gzip,,chunked", "chunked , ", " ,chunked"}) {
    EXPECT_EQ(parse_transfer_encoding(v).error(), (ParseError{400, "empty element in Transfer-Encoding"})) << v;
  }
  for (std::string_view v : {"chunked;q=1", "chunked ;a", "gzip, Chunked;x=\"y\""}) {
    EXPECT_EQ(parse_transfer_encoding(v).error(), (ParseError{400, "parameters on chunked"})) << v;
  }
}

TEST(TransferEncodingHeader, RejectsMalformedValuesWith400) {
  for (std::string_view v : {"", " ", ",", "chun ked", "chunked;", "chunked;=x", "gzip;a=", "gzip;a=\"x",
                             "\"chunked\"", "chunked\x01", "gzip chunked"}) {
    EXPECT_EQ(status_of(parse_transfer_encoding(v)), 400) << v;
  }
}

TEST(TransferEncodingHeader, DoesNotTreatChunkedPrefixAsChunked) {
  auto r = parse_transfer_encoding("chunkedx");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->chunked);
}

// ---- chunk-size lines ------------------------------------------------------------------

TEST(ChunkSize, ParsesHexInEitherCase) {
  EXPECT_EQ(parse_chunk_size_line("1a\r\n").value(), 26u);
  EXPECT_EQ(parse_chunk_size_line("1A\r\n").value(), 26u);
  EXPECT_EQ(parse_chunk_size_line("FfFf").value(), 65535u);
  EXPECT_EQ(parse_chunk_size_line("0\r\n").value(), 0u);
  EXPECT_EQ(parse_chunk_size_line("0000000000000000000010").value(), 16u);
}

TEST(ChunkSize, AcceptsExtensions) {
  EXPECT_EQ(parse_chunk_size_line("5;name=value\r\n").value(), 5u);
  EXPECT_EQ(parse_chunk_size_line("5;flag\r\n").value(), 5u);
  EXPECT_EQ(parse_chunk_size_line("5 ; a = \"q;\\\"x\" ;b\r\n").value(), 5u);
}

TEST(ChunkSize, RejectsEmptySizeWith400) {
  EXPECT_EQ(status_of(parse_chunk_size_line("\r\n")), 400);
  EXPECT_EQ(status_of(parse_chunk_size_line("")), 400);
  EXPECT_EQ(status_of(parse_chunk_size_line(";ext=1\r\n")), 400);
}

TEST(ChunkSize, RejectsWhitespaceAroundSizeWith400) {
  EXPECT_EQ(status_of(parse_chunk_size_line(" 5\r\n")), 400);
  EXPECT_EQ(status_of(parse_chunk_size_line("5 \r\n")), 400);
  EXPECT_EQ(status_of(parse_chunk_size_line("\t5\r\n")), 400);
}

TEST(ChunkSize, RejectsNonHexWith400) {
  for (std::string_view line : {"0x5\r\n", "+5\r\n", "-5\r\n", "5g\r\n", "g\r\n", "5_0\r\n", "5\r\r\n", "5\n"}) {
    EXPECT_EQ(status_of(parse_chunk_size_line(line)), 400) << line;
  }
}

TEST(ChunkSize, RejectsMalformedExtensionsWith400) {
  for (std::string_view line : {"5;\r\n", "5;=v\r\n", "5;a=\r\n", "5;a=\"open\r\n", "5;a=b c\r\n", "5;a=b \r\n",
                                "5;a\x01\r\n"}) {
    EXPECT_EQ(status_of(parse_chunk_size_line(line)), 400) << line;
  }
}

TEST(ChunkSize, RejectsOverlongExtensionsWith400) {
  ChunkLimits limits;
  limits.max_extensions = 16;
  EXPECT_EQ(parse_chunk_size_line("5;a=0123456789abc\r\n", limits).value(), 5u);  // 16 bytes
  EXPECT_EQ(status_of(parse_chunk_size_line("5;a=0123456789abcd\r\n", limits)), 400);
}

TEST(ChunkSize, RejectsSizeAboveMaximumWith413) {
  ChunkLimits limits;
  limits.max_size = 0x100;
  EXPECT_EQ(parse_chunk_size_line("100\r\n", limits).value(), 0x100u);
  EXPECT_EQ(status_of(parse_chunk_size_line("101\r\n", limits)), 413);
  EXPECT_EQ(status_of(parse_chunk_size_line("fffffffffffffffffffff\r\n")), 413);
  limits.max_size = 0;
  EXPECT_EQ(status_of(parse_chunk_size_line("f\r\n", limits)), 413);
}

TEST(ChunkSize, RoundTripsFormattedSizes) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t n = rng() >> (rng() % 62 + 2);  // below the default 2^62 maximum
    char buf[32];
    std::snprintf(buf, sizeof buf, i % 2 ? "%llx\r\n" : "%llX\r\n", static_cast<unsigned long long>(n));
    EXPECT_EQ(parse_chunk_size_line(buf).value(), n) << buf;
  }
}

// ---- tokens and field values ---------------------------------------------------------

TEST(Tokens, MatchRfc9110Tchar) {
  EXPECT_TRUE(is_token("!#$%&'*+-.^_`|~09azAZ"));
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{} \t\x7f\x80")) {
    EXPECT_FALSE(is_token(std::string(1, c))) << static_cast<int>(c);
  }
  EXPECT_FALSE(is_token(""));
}

TEST(FieldValues, RejectCrLfForResponseSplitting) {
  EXPECT_TRUE(is_valid_field_value("text/html; charset=\"utf-8\"\t\xC3\xA9"));
  EXPECT_FALSE(is_valid_field_value("a\r\nSet-Cookie: x"));
  EXPECT_FALSE(is_valid_field_value("a\nb"));
}

// Every byte value at every position of values up to 40 bytes long (the 16-byte, 8-byte
// and bytewise paths of the scan): exactly HTAB, 0x20-0x7e and obs-text are accepted.
TEST(FieldValues, EveryByteAtEveryPositionMatchesTheGrammar) {
  for (int b = 0; b < 256; ++b) {
    const bool allowed = b == '\t' || (b >= 0x20 && b != 0x7f);
    for (size_t length : {1u, 7u, 8u, 15u, 16u, 17u, 31u, 40u}) {
      for (size_t at = 0; at < length; ++at) {
        std::string value(length, 'v');
        value[at] = static_cast<char>(b);
        ASSERT_EQ(is_valid_field_value(value), allowed) << "byte " << b << " at " << at << " of " << length;
      }
    }
  }
}

// ---- the byte scans and the one-pass paths -----------------------------------------------
//
// The parser accepts well-formed lines in one pass (16 bytes at a time with SSE2) and
// leaves everything else to the line-at-a-time code; these tests put each kind of byte at
// every position within a 16-byte block and across block boundaries.

bool in_class(detail::ScanClass cls, unsigned char b) {
  switch (cls) {
    case detail::ScanClass::token:
      return std::isalnum(b) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(b)) != std::string_view::npos;
    case detail::ScanClass::field_value:
      return b == '\t' || (b >= 0x20 && b != 0x7f);
    case detail::ScanClass::target:
      return b > 0x20 && b < 0x7f;
    case detail::ScanClass::plain_target:
      return b > 0x20 && b < 0x7f && b != '%' && b != '\\' && b != '#';
  }
  return false;
}

// Every byte value at every position of runs of 0-48 bytes, after fillers that take the
// fast and the slow lanes of each scan ("_" is a tchar the SSE2 token scan steps over one
// at a time; HTAB and obs-text are field bytes outside the common range): both versions
// stop exactly at the first byte outside the class, and at the first of two.
TEST(Scan, BothVersionsStopAtTheFirstByteOutsideTheClass) {
  struct Case {
    detail::ScanClass cls;
    std::string_view fillers;
  };
  const Case cases[] = {{detail::ScanClass::token, "a_Z9-~"},
                        {detail::ScanClass::field_value, "v\t\x80 "},
                        {detail::ScanClass::target, "/a%~"},
                        {detail::ScanClass::plain_target, "/a~?"}};
  for (const Case& c : cases) {
    for (char filler : c.fillers) {
      for (std::size_t length = 0; length <= 48; ++length) {
        const std::string all(length, filler);
        for (bool portable : {false, true}) {
          ASSERT_EQ(detail::scan(c.cls, all.data(), all.data() + length, portable), all.data() + length);
        }
        for (std::size_t at = 0; at < length; ++at) {
          for (int b = 0; b < 256; ++b) {
            std::string s = all;
            s[at] = static_cast<char>(b);
            if (!in_class(c.cls, static_cast<unsigned char>(b)) && at + 1 < length) s[length - 1] = s[at];
            const std::size_t expected = in_class(c.cls, static_cast<unsigned char>(b)) ? length : at;
            for (bool portable : {false, true}) {
              ASSERT_EQ(detail::scan(c.cls, s.data(), s.data() + length, portable) - s.data(),
                        static_cast<std::ptrdiff_t>(expected))
                  << "class " << static_cast<int>(c.cls) << " filler " << filler << " byte " << b << " at " << at
                  << " of " << length << (portable ? " portable" : "");
            }
          }
        }
      }
    }
  }
}

// crlf_head_end's contract, as a definition: a head starting with its start line whose
// bytes up to the first CRLFCRLF pair each CR with the LF after it; else 0.
std::size_t crlf_head_end_by_definition(std::string_view b) {
  if (b.empty() || b[0] == '\r' || b[0] == '\n') return 0;
  const std::size_t blank = b.find("\r\n\r\n");
  if (blank == std::string_view::npos) return 0;
  const std::size_t end = blank + 4;
  for (std::size_t i = 0; i < end; ++i) {
    if (b[i] == '\r' && b[i + 1] != '\n') return 0;
    if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) return 0;
  }
  return end;
}

// Every string of up to 8 bytes over {x, CR, LF}, after 1-40 filler bytes (so that its
// line ends fall at every position of a 32-byte block and across two), with and without
// bytes after it: both versions agree with the definition. Among them: bare CRs and LFs
// before, at and after the end, "\n\n" and "\n\r\n" ends, heads cut short.
TEST(CrlfHeadEnd, BothVersionsAgreeWithTheDefinition) {
  std::vector<std::string> tails{""};
  for (std::size_t i = 0; i < tails.size(); ++i) {  // shortest first, each extended by one byte
    if (tails[i].size() == 8) break;
    for (char c : {'x', '\r', '\n'}) tails.push_back(tails[i] + c);
  }
  std::size_t accepted = 0;
  for (std::size_t fill = 1; fill <= 40; ++fill) {
    for (const std::string& tail : tails) {
      for (std::string_view after : {"", "\r", "\rx", "GET / HTTP/1.1\r\n\r\n"}) {
        const std::string b = "G" + std::string(fill - 1, 'x') + tail + std::string(after);
        const std::size_t expected = crlf_head_end_by_definition(b);
        accepted += expected != 0;
        for (bool portable : {false, true}) {
          ASSERT_EQ(detail::crlf_head_end(b, portable), expected)
              << testing::PrintToString(b) << (portable ? " portable" : "");
        }
      }
    }
  }
  EXPECT_GT(accepted, 1000u);  // the definition accepts many of them: both outcomes are covered
}

TEST(CrlfHeadEnd, TheUsualHeadsAndWhatIsLeftToTheGeneralSearch) {
  const std::string plain = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  EXPECT_EQ(crlf_head_end(plain), plain.size());
  EXPECT_EQ(crlf_head_end(plain + plain), plain.size());  // pipelined: the first head only
  EXPECT_EQ(crlf_head_end(plain + "\n\rx"), plain.size());  // bytes after the head are not its own
  EXPECT_EQ(crlf_head_end(std::string_view(plain).substr(0, plain.size() - 1)), 0u);  // not whole yet
  EXPECT_EQ(crlf_head_end(""), 0u);
  EXPECT_EQ(crlf_head_end("\r\n" + plain), 0u);  // a blank line first
  EXPECT_EQ(crlf_head_end("GET / HTTP/1.1\nHost: a\r\n\r\n"), 0u);  // bare LF
  EXPECT_EQ(crlf_head_end("GET / HTTP/1.1\r\nHost: a\n\n"), 0u);  // a bare-LF end
  EXPECT_EQ(crlf_head_end("GET / HTTP/1.1\r\nHost: a\r\n\n"), 0u);
  EXPECT_EQ(crlf_head_end("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 0u);  // bare CR
  EXPECT_EQ(crlf_head_end("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), 0u);
  // A bare CR or LF after the 16-byte block where the end is: still accepted.
  const std::string long_head = "GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(crlf_head_end(long_head + std::string(20, 'x') + "\r"), long_head.size());
}

// A field line with a name of `name_length` bytes and the given value and terminator.
std::string field_line(std::size_t name_length, std::string_view value, std::string_view terminator = "\r\n") {
  return std::string(name_length, 'N') + ": " + std::string(value) + std::string(terminator);
}

TEST(HeaderBlock, AcceptsLinesEndingAtEveryOffsetOfABlock) {
  for (std::size_t name_length : {1u, 2u, 13u, 14u, 15u, 16u, 17u, 30u, 31u, 32u, 33u}) {
    for (std::size_t value_length = 0; value_length <= 40; ++value_length) {
      const std::string value(value_length, 'v');
      for (std::string_view terminator : {"\r\n"sv, "\n"sv}) {
        const std::string block = field_line(name_length, value, terminator) + "B: 2" + std::string(terminator) +
                                  std::string(terminator);
        auto r = parse_header_block(block, lenient_limits());
        ASSERT_TRUE(r.ok()) << name_length << " " << value_length;
        if (terminator == "\n") {
          EXPECT_EQ(block_status(block), 400);
        }
        ASSERT_EQ(r->size(), 2u);
        EXPECT_EQ((*r)[0], (HeaderField{std::string(name_length, 'N'), value}));
        EXPECT_EQ((*r)[1], (HeaderField{"B", "2"}));
      }
      // The last line unterminated, and with whitespace to trim before the terminator.
      const std::string unterminated = field_line(name_length, value, "");
      auto last = parse_header_block(unterminated);
      ASSERT_TRUE(last.ok());
      EXPECT_EQ((*last)[0].value, value);
      const std::string trailing_ows = field_line(name_length, value + " \t ", "\r\n");
      auto padded = parse_header_block(trailing_ows);
      ASSERT_TRUE(padded.ok());
      EXPECT_EQ((*padded)[0].value, value);
    }
  }
}

TEST(HeaderBlock, RejectsCtlAtEveryPositionWithinAndAcrossBlocks) {
  // Every position of values up to 40 bytes (blocks of 16 counted from the value's first
  // byte), after names of several lengths, in the first and in a later line.
  for (char bad : {'\0', '\x01', '\x0b', '\r', '\n', '\x1f', '\x7f'}) {
    for (std::size_t name_length : {1u, 15u, 16u, 17u}) {
      for (std::size_t length = 1; length <= 40; ++length) {
        for (std::size_t at = 0; at < length; ++at) {
          std::string value(length, 'v');
          value[at] = bad;
          const std::string line = field_line(name_length, value);
          ASSERT_EQ(block_status(line + "\r\n"), 400) << static_cast<int>(bad) << " " << length << " " << at;
          ASSERT_EQ(block_status("A: 1\r\n" + line + "B: 2\r\n\r\n"), 400) << static_cast<int>(bad);
          if (bad != '\n' || at + 1 < length) {  // (a final LF terminates the line)
            ASSERT_EQ(block_status(field_line(name_length, value, "")), 400);  // unterminated
          }
        }
      }
    }
  }
}

TEST(HeaderBlock, AcceptsTabAndObsTextAtEveryPosition) {
  for (char ok : {'\t', '\x80', '\xff', ' '}) {
    for (std::size_t length = 3; length <= 40; ++length) {
      for (std::size_t at = 1; at + 1 < length; ++at) {
        std::string value(length, 'v');
        value[at] = ok;
        const std::string block = field_line(3, value) + "\r\n";
        auto r = parse_header_block(block);
        ASSERT_TRUE(r.ok()) << static_cast<int>(ok) << " " << length << " " << at;
        EXPECT_EQ((*r)[0].value, value);
      }
    }
  }
}

TEST(HeaderBlock, RejectsBareCrWhereverItFalls) {
  for (std::size_t length = 0; length <= 34; ++length) {
    const std::string value(length, 'v');
    EXPECT_EQ(block_status(field_line(2, value, "\r")), 400) << length;         // CR at the very end
    EXPECT_EQ(block_status(field_line(2, value, "\r\r\n\r\n")), 400) << length;  // CR CR LF
    EXPECT_EQ(block_status(field_line(2, value, "\rx\r\n\r\n")), 400) << length;
  }
}

// Each byte value at each position of names up to 40 bytes: a tchar belongs to the name,
// ":" ends it early (the rest joins the value), anything else is a 400.
TEST(HeaderBlock, NameStopsExactlyAtTheFirstNonTchar) {
  for (std::size_t length = 1; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string name(length, at % 2 ? 'n' : '_');
        name[at] = static_cast<char>(b);
        const std::string block = name + ": v\r\n\r\n";
        auto r = parse_header_block(block);
        const bool tchar = in_class(detail::ScanClass::token, static_cast<unsigned char>(b));
        if (tchar || (b == ':' && at > 0)) {
          ASSERT_TRUE(r.ok()) << b << " at " << at << " of " << length;
          EXPECT_EQ((*r)[0].name, name.substr(0, tchar ? length : at));
        } else {
          ASSERT_FALSE(r.ok()) << b << " at " << at << " of " << length;
          EXPECT_EQ(r.error().status, 400);
        }
      }
    }
  }
}

// The fast path leaves errors to the line-at-a-time code, which checks in a fixed order:
// line length, leading whitespace, name, value, field count.
TEST(HeaderBlock, ReportsTheFirstErrorInTheDocumentedOrder) {
  HeadLimits limits;
  limits.max_field_line = 20;
  auto too_long = parse_header_block("A: \x01" + std::string(30, 'x') + "\r\n", limits);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error(), (ParseError{431, "header line too long"}));
  EXPECT_EQ(status_of(parse_header_block("Bad Name: " + std::string(30, 'x') + "\r\n", limits)), 431);
  EXPECT_EQ(parse_header_block("A : \x01\r\n").error(), (ParseError{400, "whitespace before colon in header"}));
  EXPECT_EQ(parse_header_block("A: 1\r\n  \x01\r\n").error(), (ParseError{400, "obsolete line folding"}));
  EXPECT_EQ(parse_header_block("A\x01: x\r\n").error(), (ParseError{400, "invalid character in header name"}));
  EXPECT_EQ(parse_header_block("A x\r\n").error(), (ParseError{400, "no colon in header line"}));
  EXPECT_EQ(parse_header_block("A: a\rb\r\n").error(), (ParseError{400, "invalid character in header value"}));
  limits = {};
  limits.max_fields = 1;
  EXPECT_EQ(parse_header_block("A: 1\r\nB: \x01\r\n", limits).error(),
            (ParseError{400, "invalid character in header value"}));
  EXPECT_EQ(parse_header_block("A: 1\r\nB: 2\r\n", limits).error(), (ParseError{431, "too many headers"}));
  // The line-length limit is inclusive, whichever path takes the line.
  limits = {};
  limits.max_field_line = 20;
  EXPECT_EQ(block_status("A: " + std::string(17, 'x') + " \r\n", limits), 431);
  EXPECT_EQ(block_status("A:" + std::string(18, 'x') + "\n", limits), 400);  // bare LF (strict)
  limits.policy = kLenient;
  EXPECT_EQ(block_status("A:" + std::string(18, 'x') + "\n", limits), 0);
  EXPECT_EQ(block_status("A:" + std::string(18, 'x'), limits), 0);
}

// Each byte value at each position of targets up to 40 bytes through the whole-head parser.
TEST(RequestHead, TargetStopsExactlyAtTheFirstInvalidByte) {
  HeadLimits lenient = lenient_limits();
  lenient.allow_obs_text_in_target = true;
  for (std::size_t length = 1; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string target = "/" + std::string(length, 'p');
        target[1 + at] = static_cast<char>(b);
        const std::string head = "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n";
        const bool visible = b > 0x20 && b < 0x7f;
        auto strict = parse_request_head(head);
        ASSERT_EQ(strict.ok(), visible && b != '#' && b != '\\') << b << " at " << at << " of " << length;
        if (strict.ok()) {
          EXPECT_EQ(strict->start_line.target, target);
        }
        auto r = parse_request_head(head, lenient);
        ASSERT_EQ(r.ok(), visible || b >= 0x80) << b << " at " << at << " of " << length;
        if (r.ok()) {
          EXPECT_EQ(r->start_line.target, target);
        }
      }
    }
  }
}

TEST(RequestHead, MethodStopsExactlyAtTheFirstNonTchar) {
  for (std::size_t length = 1; length <= 20; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string method(length, 'M');
        method[at] = static_cast<char>(b);
        if (b == '\n' && at == 0 && length > 1) continue;  // an empty line before the request line
        const std::string head = method + " / HTTP/1.1\r\n\r\n";
        auto r = parse_request_head(head);
        ASSERT_EQ(r.ok(), in_class(detail::ScanClass::token, static_cast<unsigned char>(b))) << b << " at " << at;
        if (r.ok()) {
          EXPECT_EQ(r->start_line.method, method);
        }
      }
    }
  }
}

TEST(RequestHead, StartLineEndsOnlyAtCrLfOrLf) {
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\r\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\rX: y\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1 \r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/1.10\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\x01\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/2.0\n\n"), 505);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\n"), 400);
  EXPECT_EQ(request_head_status("GET / HTTP/1.1\n", lenient_limits()), 0);
  auto bare = parse_request_head("GET / HTTP/1.1");  // no terminator at all: one line, no fields
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->start_line.version, "HTTP/1.1");
  auto minor = parse_request_head("GET / HTTP/1.0\r\nA: b\r\n\r\n");
  ASSERT_TRUE(minor.ok());
  EXPECT_EQ(minor->start_line.minor, 0);
  EXPECT_EQ(minor->headers, (std::vector<HeaderField>{{"A", "b"}}));
}

TEST(RequestHead, StartLineLimitIsInclusive) {
  const std::string line = "GET /" + std::string(20, 'a') + " HTTP/1.1";
  HeadLimits limits;
  limits.max_start_line = line.size();
  EXPECT_EQ(request_head_status(line + "\r\n\r\n", limits), 0);
  limits.max_start_line = line.size() - 1;
  EXPECT_EQ(request_head_status(line + "\r\n\r\n", limits), 414);
  EXPECT_EQ(request_head_status(line + "\n\n", limits), 414);
}

TEST(RequestHead, TargetFormsThroughTheWholeHead) {
  EXPECT_EQ(request_head_status("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), 0);
  EXPECT_EQ(request_head_status("CONNECT /x HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("OPTIONS * HTTP/1.1\r\n\r\n"), 0);
  EXPECT_EQ(request_head_status("GET * HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(request_head_status("GET http://a/b HTTP/1.1\r\n\r\n"), 0);
  EXPECT_EQ(request_head_status("GET a/b HTTP/1.1\r\n\r\n"), 400);
}

// Whatever the start line, the whole-head parser agrees with parse_request_line on it
// (value or error), on random mutations of a request line.
TEST(RequestHead, AgreesWithParseRequestLineOnRandomLines) {
  const std::string seed = "OPTIONS http://example.com/a?b=c HTTP/1.1";
  std::mt19937 rng(99);
  for (int round = 0; round < 50000; ++round) {
    std::string line = seed.substr(0, rng() % (seed.size() + 1));
    for (int k = 0; k < 2 && !line.empty(); ++k) {
      static constexpr std::string_view kBytes("\0\t\r\n :/*%\x7f\x80 HTTP/1.2"sv);
      line[rng() % line.size()] = rng() % 2 ? kBytes[rng() % kBytes.size()] : static_cast<char>(rng() % 256);
    }
    const std::size_t nl = line.find('\n');
    if (nl != std::string::npos) line.resize(nl);
    if (line.empty() || (line.size() >= 1 && line.back() == '\r')) continue;
    HeadLimits limits;
    limits.allow_obs_text_in_target = rng() % 2;
    limits.max_start_line = rng() % 2 ? 65536 : rng() % 48;
    auto alone = parse_request_line(line, limits);
    const std::string whole = line + "\r\nHost: h\r\n\r\n";
    auto head = parse_request_head(whole, limits);
    ASSERT_EQ(alone.ok(), head.ok()) << line;
    if (alone.ok()) {
      EXPECT_EQ(head->start_line.method, alone->method);
      EXPECT_EQ(head->start_line.target, alone->target);
      EXPECT_EQ(head->start_line.version, alone->version);
      EXPECT_EQ(head->start_line.minor, alone->minor);
    } else {
      EXPECT_EQ(head.error(), alone.error()) << line;
    }
  }
}

TEST(ParseRequestHead, IntoReusedFieldsClearsThemFirstAndOnError) {
  std::vector<HeaderField> fields{{"Stale", "x"}};
  auto line = parse_request_head("GET /a HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", fields);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->target, "/a");
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0].name, "Host");
  auto bad = parse_request_head("GET /b HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n", fields);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(fields.empty());
}

// ---- list helpers and errors -------------------------------------------------------------

TEST(TrimOws, StripsSpacesAndTabsAtBothEndsOnly) {
  EXPECT_EQ(trim_ows(" \t a b\t "), "a b");
  EXPECT_EQ(trim_ows("\t \t"), "");
  EXPECT_EQ(trim_ows("\r\nx\n"), "\r\nx\n");  // CR and LF are not OWS
}

TEST(ForEachListElement, VisitsTrimmedElementsInOrderEmptyOnesIncluded) {
  std::vector<std::string> seen;
  EXPECT_TRUE(for_each_list_element(" gzip ,, chunked\t,", [&](std::string_view e) {
    seen.emplace_back(e);
    return true;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"gzip", "", "chunked", ""}));
  seen.clear();
  EXPECT_TRUE(for_each_list_element("", [&](std::string_view e) {
    seen.emplace_back(e);
    return true;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{""}));
}

TEST(ForEachListElement, StopsWhenTheVisitorSaysSo) {
  int visits = 0;
  EXPECT_FALSE(for_each_list_element("keep-alive, close, upgrade", [&](std::string_view e) {
    ++visits;
    return e != "close";
  }));
  EXPECT_EQ(visits, 2);
}

struct StatusError : std::runtime_error {
  StatusError(const std::string& what, int status) : std::runtime_error(what), status(status) {}
  int status;
};

TEST(ParseResult, ThrowIfErrorRaisesTheReasonAndStatus) {
  ParseResult<int> bad = ParseError{431, "too many fields"};
  try {
    bad.throw_if_error<StatusError>();
    ADD_FAILURE() << "no exception";
  } catch (const StatusError& e) {
    EXPECT_STREQ(e.what(), "too many fields");
    EXPECT_EQ(e.status, 431);
  }
  ParseResult<int> good = 7;
  EXPECT_NO_THROW(good.throw_if_error<StatusError>());
  ParseResult<void> bad_void = ParseError{400, "bad"};
  EXPECT_THROW(bad_void.throw_if_error<StatusError>(), StatusError);
  EXPECT_NO_THROW(ParseResult<void>().throw_if_error<StatusError>());
}

}  // namespace
}  // namespace squall
