#include "squall/httputil.h"
#include "squall/ioloop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace squall {
namespace {

using namespace std::string_view_literals;
using Values = std::vector<std::string>;
using Cookies = std::vector<std::pair<std::string, std::string>>;

template <class T>
int status_of(const ParseResult<T>& r) {
  return r.ok() ? 0 : r.error().status;
}

std::vector<std::string> names_of(const Arguments& args) {
  std::vector<std::string> names;
  for (const auto& entry : args) names.push_back(entry.name);
  return names;
}

// ---- url_unquote ----------------------------------------------------------------------

TEST(UrlUnquote, DecodesPercentEscapesInEitherCase) {
  EXPECT_EQ(url_unquote("a%20b%2fc%2Fd"), "a b/c/d");
  EXPECT_EQ(url_unquote("%00%ff"), std::string("\0\xff", 2));
}

TEST(UrlUnquote, LeavesInvalidEscapesAsIs) {
  EXPECT_EQ(url_unquote("100%"), "100%");
  EXPECT_EQ(url_unquote("%4"), "%4");
  EXPECT_EQ(url_unquote("%zz%4g%%41"), "%zz%4g%A");
}

TEST(UrlUnquote, TurnsPlusIntoSpaceOnlyWhenAsked) {
  EXPECT_EQ(url_unquote("a+b%2B"), "a+b+");
  EXPECT_EQ(url_unquote("a+b%2B", true), "a b+");
}

TEST(UrlUnquote, DoesNotDecodeTwice) {
  EXPECT_EQ(url_unquote("%2541"), "%41");
}

TEST(UrlUnquote, InvertsPercentEncodingOfEveryByte) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string raw(rng() % 40, '\0');
    for (char& c : raw) c = static_cast<char>(rng() % 256);
    std::string encoded;
    for (char c : raw) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      encoded += buf;
    }
    EXPECT_EQ(url_unquote(encoded), raw);
  }
}

// ---- parse_query ------------------------------------------------------------------------

TEST(ParseQuery, CollectsMultipleValuesPerName) {
  const Arguments args = parse_query("a=1&b=2&a=3");
  EXPECT_EQ(args.get_list("a"), (Values{"1", "3"}));
  EXPECT_EQ(args.get_list("b"), (Values{"2"}));
  EXPECT_EQ(names_of(args), (Values{"a", "b"}));
}

TEST(ParseQuery, KeepsBlankValuesByDefault) {
  const Arguments args = parse_query("a=&b&c=1");
  EXPECT_EQ(args.get_list("a"), (Values{""}));
  EXPECT_EQ(args.get_list("b"), (Values{""}));
  EXPECT_EQ(names_of(args), (Values{"a", "b", "c"}));
}

TEST(ParseQuery, DropsBlankValuesWhenAsked) {
  const Arguments args = parse_query("a=&b&c=1", false);
  EXPECT_EQ(names_of(args), (Values{"c"}));
}

TEST(ParseQuery, DecodesPercentAndPlusInNamesAndValues) {
  const Arguments args = parse_query("a+b=c+d&x=%2B%20%25&%41=1");
  EXPECT_EQ(args.get_list("a b"), (Values{"c d"}));
  EXPECT_EQ(args.get_list("x"), (Values{"+ %"}));
  EXPECT_EQ(args.get_list("A"), (Values{"1"}));
}

TEST(ParseQuery, SplitsOnAmpersandOnlyAndAtFirstEquals) {
  // Python 3.10+ no longer splits on ';'.
  const Arguments args = parse_query("e=%zz+x%41;f=1&g=a=b");
  EXPECT_EQ(args.get_list("e"), (Values{"%zz xA;f=1"}));
  EXPECT_EQ(args.get_list("g"), (Values{"a=b"}));
}

TEST(ParseQuery, SkipsEmptyPairsButKeepsEmptyNames) {
  const Arguments args = parse_query("&&=c&&d=1&");
  EXPECT_EQ(names_of(args), (Values{"", "d"}));
  EXPECT_EQ(args.get_list(""), (Values{"c"}));
  EXPECT_TRUE(parse_query("").empty());
}

TEST(ParseQuery, IntoAppendsToExistingArguments) {
  Arguments args = parse_query("a=1");
  parse_query_into("a=2&b=3", args);
  EXPECT_EQ(args.get_list("a"), (Values{"1", "2"}));
  EXPECT_EQ(args.get_list("b"), (Values{"3"}));
}

TEST(ParseQuery, ManyDistinctNamesStayFindableAndOrdered) {
  std::string query;
  for (int i = 0; i < 5000; ++i) query += "k" + std::to_string(i) + "=" + std::to_string(i) + "&";
  query += "k17=again";
  const Arguments args = parse_query(query);
  EXPECT_EQ(args.size(), 5000u);
  EXPECT_EQ(args.get_list("k4999"), (Values{"4999"}));
  EXPECT_EQ(args.get_list("k17"), (Values{"17", "again"}));
  EXPECT_FALSE(args.contains("k5000"));
  EXPECT_EQ(names_of(args)[1234], "k1234");
}

// A copy of a dictionary large enough to be indexed has its own index: names added to
// the copy are found there and not in the original.
TEST(ParseQuery, CopiedIndexedArgumentsAreIndependent) {
  std::string query;
  for (int i = 0; i < 40; ++i) query += "k" + std::to_string(i) + "=" + std::to_string(i) + "&";
  const Arguments original = parse_query(query);
  Arguments copy = original;
  copy.add("extra", "1");
  copy.add("k3", "again");
  EXPECT_EQ(copy.get_list("extra"), (Values{"1"}));
  EXPECT_EQ(copy.get_list("k3"), (Values{"3", "again"}));
  EXPECT_EQ(copy.get_list("k39"), (Values{"39"}));
  EXPECT_FALSE(original.contains("extra"));
  EXPECT_EQ(original.get_list("k3"), (Values{"3"}));
}

// ---- split_host_and_port ---------------------------------------------------------------

TEST(SplitHostAndPort, SeparatesTrailingPort) {
  EXPECT_EQ(split_host_and_port("example.com:8080"),
            (std::pair<std::string_view, std::optional<std::uint16_t>>{"example.com", 8080}));
  EXPECT_EQ(split_host_and_port("[::1]:80").first, "[::1]");
}

TEST(SplitHostAndPort, LeavesHostWithoutValidPortWhole) {
  EXPECT_EQ(split_host_and_port("example.com").second, std::nullopt);
  EXPECT_EQ(split_host_and_port("[::1]").first, "[::1]");
  EXPECT_EQ(split_host_and_port("h:99999").second, std::nullopt);
  EXPECT_EQ(split_host_and_port("h:").second, std::nullopt);
  EXPECT_EQ(split_host_and_port(":80").second, std::nullopt);
}

// The port is read from the end: 1-5 digits after the last ':', any other byte there
// (or a sixth digit) leaves the netloc whole.
TEST(SplitHostAndPort, ReadsOneToFiveDigitsAfterTheLastColon) {
  using Split = std::pair<std::string_view, std::optional<std::uint16_t>>;
  EXPECT_EQ(split_host_and_port("a:b:80"), (Split{"a:b", 80}));
  EXPECT_EQ(split_host_and_port("h:0"), (Split{"h", 0}));
  EXPECT_EQ(split_host_and_port("h:00080"), (Split{"h", 80}));
  EXPECT_EQ(split_host_and_port("h:65535"), (Split{"h", 65535}));
  EXPECT_EQ(split_host_and_port("h:65536"), (Split{"h:65536", std::nullopt}));
  EXPECT_EQ(split_host_and_port("h:000080"), (Split{"h:000080", std::nullopt}));
  EXPECT_EQ(split_host_and_port("h:8a0"), (Split{"h:8a0", std::nullopt}));
  EXPECT_EQ(split_host_and_port("h:80:"), (Split{"h:80:", std::nullopt}));
  EXPECT_EQ(split_host_and_port("h80"), (Split{"h80", std::nullopt}));
  EXPECT_EQ(split_host_and_port("80"), (Split{"80", std::nullopt}));
  EXPECT_EQ(split_host_and_port("x:1"), (Split{"x", 1}));
}

// ---- header parameters -------------------------------------------------------------------

TEST(HeaderParamsParse, SplitsValueAndLowercasedParameters) {
  const HeaderParams p = parse_header_params("text/HTML; Charset=UTF-8 ;  q=0.5");
  EXPECT_EQ(p.value, "text/HTML");
  EXPECT_EQ(p.param("charset"), "UTF-8");
  EXPECT_EQ(p.param("CHARSET"), "UTF-8");
  EXPECT_EQ(p.param("q"), "0.5");
  EXPECT_EQ(p.param("missing"), std::nullopt);
}

TEST(HeaderParamsParse, KeepsSemicolonsInsideQuotes) {
  const HeaderParams p = parse_header_params(R"(form-data; name="files"; filename="a;b.txt")");
  EXPECT_EQ(p.value, "form-data");
  EXPECT_EQ(p.param("name"), "files");
  EXPECT_EQ(p.param("filename"), "a;b.txt");
}

TEST(HeaderParamsParse, UnescapesBackslashAndQuoteOnly) {
  EXPECT_EQ(parse_header_params(R"(x; q="a\\b\"c")").param("q"), R"(a\b"c)");
  // Windows paths sent unescaped keep their backslashes, as with email.utils.
  EXPECT_EQ(parse_header_params(R"(x; filename="C:\dir\f.txt")").param("filename"), R"(C:\dir\f.txt)");
}

TEST(HeaderParamsParse, DropsParametersWithoutEquals) {
  const HeaderParams p = parse_header_params("x; noval; d=Up; =empty");
  EXPECT_EQ(p.param("noval"), std::nullopt);
  EXPECT_EQ(p.param("d"), "Up");
}

TEST(HeaderParamsParse, StripsAngleBracketsOfUnquotedValues) {
  const HeaderParams p = parse_header_params(R"(x; b="<angle>"; c=<x>)");
  EXPECT_EQ(p.param("b"), "<angle>");
  EXPECT_EQ(p.param("c"), "x");
}

TEST(HeaderParamsParse, DecodesRfc5987ExtendedValueOverPlainOne) {
  const HeaderParams p = parse_header_params(R"(attachment; filename*=utf-8''T%C3%A4st; filename="plain")");
  EXPECT_EQ(p.param("filename"), "T\xC3\xA4st");
  EXPECT_EQ(p.params.size(), 1u);
}

TEST(HeaderParamsParse, TranscodesLatin1ExtendedValueToUtf8) {
  EXPECT_EQ(parse_header_params("attachment; filename*=iso-8859-1''caf%E9").param("filename"), "caf\xC3\xA9");
}

TEST(HeaderParamsParse, JoinsRfc2231Continuations) {
  const HeaderParams p = parse_header_params(R"(x; a*1="bar"; a*0="foo"; u*0*=utf-8''%C3; u*1*=%A9)");
  EXPECT_EQ(p.param("a"), "foobar");
  EXPECT_EQ(p.param("u"), "\xC3\xA9");
}

TEST(HeaderParamsParse, LaterDuplicateWinsAtFirstPosition) {
  const HeaderParams p = parse_header_params("x; a=1; b=2; A=3");
  ASSERT_EQ(p.params.size(), 2u);
  EXPECT_EQ(p.params[0], (std::pair<std::string, std::string>{"a", "3"}));
}

TEST(HeaderParamsParse, HandlesEmptyAndUnterminatedInput) {
  EXPECT_EQ(parse_header_params("").value, "");
  const HeaderParams p = parse_header_params(R"(x; a="open; b=2)");
  EXPECT_EQ(p.value, "x");
  EXPECT_EQ(p.param("a"), R"("open; b=2)");
}

// ---- urlencoded bodies --------------------------------------------------------------------

TEST(BodyArguments, ParsesUrlencodedBody) {
  Arguments args;
  Files files;
  auto r = parse_body_arguments("application/x-www-form-urlencoded; charset=UTF-8", "a=1&b=x+y&a=%32", args, files);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(args.get_list("a"), (Values{"1", "2"}));
  EXPECT_EQ(args.get_list("b"), (Values{"x y"}));
  EXPECT_TRUE(files.empty());
}

TEST(BodyArguments, MatchesContentTypeCaseInsensitively) {
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_body_arguments("Application/X-WWW-Form-Urlencoded", "a=1", args, files).ok());
  EXPECT_EQ(args.get_list("a"), (Values{"1"}));
}

TEST(BodyArguments, IgnoresOtherContentTypes) {
  Arguments args;
  Files files;
  EXPECT_TRUE(parse_body_arguments("application/json", "a=1", args, files).ok());
  EXPECT_TRUE(parse_body_arguments("application/x-www-form-urlencodedX", "a=1", args, files).ok());
  EXPECT_TRUE(parse_body_arguments("", "a=1", args, files).ok());
  EXPECT_TRUE(args.empty());
}

TEST(BodyArguments, RefusesContentEncodedFormWith415) {
  Arguments args;
  Files files;
  const HTTPHeaders headers{{"Content-Encoding", "gzip"}};
  auto r = parse_body_arguments("application/x-www-form-urlencoded", "a=1", args, files, &headers);
  EXPECT_EQ(status_of(r), 415);
  EXPECT_TRUE(args.empty());
}

// ---- multipart ----------------------------------------------------------------------

constexpr std::string_view kBoundary = "1234";

std::string field_part(std::string_view name, std::string_view value) {
  return "--1234\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n\r\n" +
         std::string(value) + "\r\n";
}

TEST(Multipart, ParsesFieldsAndFiles) {
  const std::string body = field_part("title", "hello") +
                           "--1234\r\n"
                           "Content-Disposition: form-data; name=\"upload\"; filename=\"ab.txt\"\r\n"
                           "Content-Type: text/plain\r\n"
                           "\r\n"
                           "Foo\r\nbar\r\n"
                           "--1234--\r\n";
  Arguments args;
  Files files;
  auto r = parse_body_arguments("multipart/form-data; boundary=1234", body, args, files);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  EXPECT_EQ(args.get_list("title"), (Values{"hello"}));
  ASSERT_EQ(files.get_list("upload").size(), 1u);
  EXPECT_EQ(files.get_list("upload")[0], (HTTPFile{"ab.txt", "text/plain", "Foo\r\nbar"}));
}

TEST(Multipart, DefaultsFileContentTypeToApplicationUnknown) {
  const std::string body =
      "--1234\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\r\n\x01\x02\r\n--1234--";
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_multipart_form_data(kBoundary, body, args, files).ok());
  EXPECT_EQ(files.get_list("f")[0].content_type, "application/unknown");
  EXPECT_EQ(files.get_list("f")[0].body, "\x01\x02");
}

TEST(Multipart, TreatsEmptyFilenameAsField) {
  const std::string body =
      "--1234\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\nv\r\n--1234--";
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_multipart_form_data(kBoundary, body, args, files).ok());
  EXPECT_EQ(args.get_list("f"), (Values{"v"}));
  EXPECT_TRUE(files.empty());
}

TEST(Multipart, AcceptsQuotedBoundary) {
  const std::string body = "--a;b c\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--a;b c--\r\n";
  Arguments args;
  Files files;
  auto r = parse_body_arguments(R"(multipart/form-data; boundary="a;b c")", body, args, files);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  EXPECT_EQ(args.get_list("k"), (Values{"v"}));
  Arguments direct;
  ASSERT_TRUE(parse_multipart_form_data(R"("a;b c")", body, direct, files).ok());
  EXPECT_EQ(direct.get_list("k"), (Values{"v"}));
}

TEST(Multipart, RejectsMissingFinalBoundaryWith400) {
  const std::string body = field_part("a", "1");
  Arguments args;
  Files files;
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body, args, files)), 400);
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body + "--1234", args, files)), 400);
  EXPECT_TRUE(args.empty());
}

TEST(Multipart, AddsNothingWhenALaterPartIsInvalid) {
  const std::string body = field_part("good", "1") + "--1234\r\nContent-Disposition: inline\r\n\r\nx\r\n--1234--";
  Arguments args;
  Files files;
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body, args, files)), 400);
  EXPECT_TRUE(args.empty());
}

TEST(Multipart, RejectsMissingBoundaryParameterWith400) {
  Arguments args;
  Files files;
  EXPECT_EQ(status_of(parse_body_arguments("multipart/form-data", "--x--", args, files)), 400);
  EXPECT_EQ(status_of(parse_body_arguments("multipart/form-data; boundary=", "--x--", args, files)), 400);
  EXPECT_EQ(status_of(parse_body_arguments("multipart/form-data; boundary=\"\"", "----", args, files)), 400);
}

TEST(Multipart, RejectsOverlongBoundaryWith400) {
  Arguments args;
  Files files;
  const std::string b70(70, 'b');
  const std::string b71(71, 'b');
  const std::string body70 = "--" + b70 + "\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--" + b70 + "--";
  EXPECT_TRUE(parse_multipart_form_data(b70, body70, args, files).ok());
  EXPECT_EQ(status_of(parse_multipart_form_data(b71, "--" + b71 + "--", args, files)), 400);
}

TEST(Multipart, RejectsPartWithoutHeadersWith400) {
  Arguments args;
  Files files;
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, "--1234\r\n\r\nvalue\r\n--1234--", args, files)), 400);
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, "--1234\r\nno blank line\r\n--1234--", args, files)), 400);
}

TEST(Multipart, RejectsPartWithoutNameWith400) {
  Arguments args;
  Files files;
  const std::string body = "--1234\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--1234--";
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body, args, files)), 400);
  const std::string empty_name = "--1234\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--1234--";
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, empty_name, args, files)), 400);
}

TEST(Multipart, RejectsNonFormDataDispositionWith400) {
  Arguments args;
  Files files;
  const std::string body = "--1234\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--1234--";
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body, args, files)), 400);
  const std::string none = "--1234\r\nContent-Type: text/plain\r\n\r\nv\r\n--1234--";
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, none, args, files)), 400);
}

TEST(Multipart, RejectsMalformedPartHeadersWith400) {
  Arguments args;
  Files files;
  const std::string body = "--1234\r\nContent-Disposition: form-data; name=\"a\"\r\nBad Header\r\n\r\nv\r\n--1234--";
  EXPECT_EQ(status_of(parse_multipart_form_data(kBoundary, body, args, files)), 400);
}

TEST(Multipart, AcceptsEmptyValueRightBeforeDelimiter) {
  const std::string body = "--1234\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--1234--";
  const std::string no_body = "--1234\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n--1234--";
  for (const std::string& b : {body, no_body}) {
    Arguments args;
    Files files;
    auto r = parse_multipart_form_data(kBoundary, b, args, files);
    ASSERT_TRUE(r.ok()) << r.error().reason;
    EXPECT_EQ(args.get_list("e"), (Values{""}));
  }
}

TEST(Multipart, IgnoresPreambleEpilogueAndEmptyParts) {
  const std::string body = "This is a preamble\r\n" + field_part("a", "1") + "--1234\r\n" + field_part("b", "2") +
                           "--1234--\r\nepilogue --1234\r\n";
  Arguments args;
  Files files;
  auto r = parse_multipart_form_data(kBoundary, body, args, files);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  EXPECT_EQ(names_of(args), (Values{"a", "b"}));
}

TEST(Multipart, KeepsBoundaryLookalikesInsideValues) {
  const std::string body = field_part("a", "x\r\n--12345 not a delimiter\r\n--1234") + "--1234--";
  Arguments args;
  Files files;
  auto r = parse_multipart_form_data(kBoundary, body, args, files);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  // "\r\n--1234" followed by "\r\n" would be a delimiter, so the value ends before the last line.
  EXPECT_EQ(args.get_list("a"), (Values{"x\r\n--12345 not a delimiter"}));
}

TEST(Multipart, AcceptsTransportPaddingAfterDelimiter) {
  const std::string body = "--1234 \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--1234--";
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_multipart_form_data(kBoundary, body, args, files).ok());
  EXPECT_EQ(args.get_list("a"), (Values{"1"}));
}

TEST(Multipart, DecodesExtendedFilename) {
  const std::string body =
      "--1234\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E2%82%AC.txt\r\n\r\nx\r\n--1234--";
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_multipart_form_data(kBoundary, body, args, files).ok());
  EXPECT_EQ(files.get_list("f")[0].filename, "\xE2\x82\xAC.txt");
}

TEST(Multipart, CollectsRepeatedNamesInOrder) {
  const std::string body = field_part("a", "1") + field_part("b", "2") + field_part("a", "3") + "--1234--";
  Arguments args;
  Files files;
  ASSERT_TRUE(parse_multipart_form_data(kBoundary, body, args, files).ok());
  EXPECT_EQ(args.get_list("a"), (Values{"1", "3"}));
  EXPECT_EQ(names_of(args), (Values{"a", "b"}));
}

TEST(Multipart, NeverCrashesOnMutatedBodies) {
  const std::string seed = field_part("a", "1") +
                           "--1234\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ndata\r\n" +
                           "--1234--\r\n";
  std::mt19937 rng(99);
  for (int round = 0; round < 5000; ++round) {
    std::string body = seed.substr(0, rng() % (seed.size() + 1));
    for (int k = 0; k < 2 && !body.empty(); ++k) body[rng() % body.size()] = "-\r\n1234\"; ="[rng() % 12];
    Arguments args;
    Files files;
    auto r = parse_multipart_form_data(kBoundary, body, args, files);
    if (!r.ok()) {
      EXPECT_EQ(r.error().status, 400);
    }
  }
}

// ---- cookies ------------------------------------------------------------------------

TEST(Cookie, SplitsPairsAndStripsWhitespace) {
  EXPECT_EQ(parse_cookie("a=1; b=2;c=3 ;  d = spaced  "),
            (Cookies{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "spaced"}}));
}

TEST(Cookie, SplitsOnFirstEqualsOnly) {
  EXPECT_EQ(parse_cookie("token=abc==; x=a=b"), (Cookies{{"token", "abc=="}, {"x", "a=b"}}));
}

TEST(Cookie, ChunkWithoutEqualsIsValueWithEmptyName) {
  EXPECT_EQ(parse_cookie("justvalue"), (Cookies{{"", "justvalue"}}));
}

TEST(Cookie, LaterDuplicateReplacesValueAtFirstPosition) {
  EXPECT_EQ(parse_cookie("a=1; b=2; a=3"), (Cookies{{"a", "3"}, {"b", "2"}}));
  EXPECT_EQ(parse_cookie("=novalue; x=1; justvalue"), (Cookies{{"", "justvalue"}, {"x", "1"}}));
}

TEST(Cookie, SkipsEmptyChunks) {
  EXPECT_EQ(parse_cookie(";; a=1; ; =;"), (Cookies{{"a", "1"}}));
  EXPECT_TRUE(parse_cookie("").empty());
}

TEST(Cookie, UnquotesQuotedValues) {
  EXPECT_EQ(parse_cookie(R"(b="x\"y"; c="\101\102"; d="plain"; e="\z\\")"),
            (Cookies{{"b", "x\"y"}, {"c", "AB"}, {"d", "plain"}, {"e", "z\\"}}));
}

TEST(Cookie, LeavesUnbalancedQuotesAlone) {
  EXPECT_EQ(parse_cookie(R"(e="unterminated; f=")"), (Cookies{{"e", "\"unterminated"}, {"f", "\""}}));
}

TEST(Cookie, OctalEscapeAboveThreeIsNotDecoded) {
  EXPECT_EQ(parse_cookie(R"(o="\477")"), (Cookies{{"o", "477"}}));
}

TEST(CookieName, AcceptsWhatSimpleCookieAccepts) {
  EXPECT_TRUE(is_legal_cookie_name("session_id"));
  EXPECT_TRUE(is_legal_cookie_name("a!#$%&'*+-.^_`|~:Z9"));
  EXPECT_FALSE(is_legal_cookie_name(""));
  EXPECT_FALSE(is_legal_cookie_name("a b"));
  EXPECT_FALSE(is_legal_cookie_name("a=b"));
  EXPECT_FALSE(is_legal_cookie_name("a,b"));
  EXPECT_FALSE(is_legal_cookie_name("caf\xC3\xA9"));
}

TEST(CookieName, RejectsReservedAttributeNames) {
  EXPECT_FALSE(is_legal_cookie_name("Path"));
  EXPECT_FALSE(is_legal_cookie_name("expires"));
  EXPECT_FALSE(is_legal_cookie_name("HttpOnly"));
  EXPECT_TRUE(is_legal_cookie_name("paths"));
}

// ---- dates --------------------------------------------------------------------------

TEST(HttpDate, FormatsImfFixdate) {
  EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(format_http_date(1359312200), "Sun, 27 Jan 2013 18:43:20 GMT");
}

// Outside a loop the wall clock's second; inside a running one the loop iteration's
// time on the wall clock, which moves on with the loop's iterations. (Compared with the
// precise wall clock, within a second: time() reads a coarse clock, a tick behind.)
TEST(HttpDate, CurrentSecondIsTheWallClocksInsideALoopAndOut) {
  auto wall_second = [] {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  const auto outside_clock = wall_second();
  const std::time_t outside = current_second();
  EXPECT_LE(std::abs(outside - outside_clock), 1);

  IOLoop loop;
  std::time_t first = 0, later = 0;
  std::int64_t first_clock = 0, later_clock = 0;
  loop.add_callback([&] {
    first_clock = wall_second();
    first = current_second();
    loop.call_later(std::chrono::milliseconds(1100), [&] {
      later_clock = wall_second();
      later = current_second();
      loop.stop();
    });
  });
  loop.start();
  EXPECT_LE(std::abs(first - first_clock), 1);
  EXPECT_LE(std::abs(later - later_clock), 1);
  EXPECT_GE(later, first + 1);  // it follows the loop's time, not a second taken once
  EXPECT_EQ(current_http_date().size(), 29u);
}

TEST(HttpDate, ParsesAllThreeForms) {
  const std::time_t now = 1700000000;  // 2023
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994", now), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov 16 08:49:37 1994", now), 784111777 + 10 * 86400);
}

TEST(HttpDate, ReadsTwoDigitYearWithinFiftyYears) {
  const std::time_t now = 1700000000;  // 2023: "73" is 2073 (50 years ahead), "74" is 1974
  EXPECT_EQ(format_http_date(*parse_http_date("Monday, 01-Jan-73 00:00:00 GMT", now)),
            "Sun, 01 Jan 2073 00:00:00 GMT");
  EXPECT_EQ(format_http_date(*parse_http_date("Tuesday, 01-Jan-74 00:00:00 GMT", now)),
            "Tue, 01 Jan 1974 00:00:00 GMT");
}

TEST(HttpDate, RejectsMalformedDates) {
  for (std::string_view s :
       {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ", " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT", "Sun, 06-Nov-94 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "garbage"}) {
    EXPECT_EQ(parse_http_date(s), std::nullopt) << s;
  }
}

TEST(HttpDate, RejectsOutOfRangeFields) {
  for (std::string_view s : {"Sun, 32 Jan 1994 08:49:37 GMT", "Sun, 29 Feb 1900 00:00:00 GMT",
                             "Sun, 31 Apr 1994 00:00:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
                             "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
                             "Sun, 06 Nov 1994 08:49:61 GMT"}) {
    EXPECT_EQ(parse_http_date(s), std::nullopt) << s;
  }
  EXPECT_TRUE(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").has_value());
}

TEST(HttpDate, RoundTripsRandomTimes) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    const auto t = static_cast<std::time_t>(rng() % 253402300800ULL);  // up to year 9999
    EXPECT_EQ(parse_http_date(format_http_date(t)), t) << format_http_date(t);
  }
}

// ---- reason phrases -----------------------------------------------------------------

TEST(ReasonPhrase, MatchesPythonTable) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(418), "I'm a Teapot");
  EXPECT_EQ(reason_phrase(599), "Unknown");
}

// ---- base64 ---------------------------------------------------------------------------

TEST(Base64, EncodesTheRfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64_encode(bytes), text) << bytes;
    EXPECT_EQ(base64_decode(text), bytes) << text;
  }
}

TEST(Base64, RoundTripsEveryByteValueAtEveryLength) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(255 - i));
  for (size_t n = 0; n <= bytes.size(); n += 7) {
    std::string piece = bytes.substr(0, n);
    std::string text = base64_encode(piece);
    EXPECT_EQ(text.size(), (n + 2) / 3 * 4);
    EXPECT_EQ(base64_decode(text), piece) << n;
  }
}

TEST(Base64, DecodeRefusesWhatIsNotPaddedBase64) {
  for (std::string_view bad : {"Zg", "Zg=", "Zm9v!A==", "Z===", "Zg=a", "Zg==Zg==", "Zm 9v", "Zm9vYg-_"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

// ---- whitespace -----------------------------------------------------------------------

TEST(StripPythonWhitespace, StripsAsciiSpacesAsPythonDoesAndKeepsLatin1Ones) {
  EXPECT_EQ(strip_python_whitespace(" \t\n\v\f\r\x1c\x1d\x1e\x1f v a l \r\n"), "v a l");
  EXPECT_EQ(strip_python_whitespace("\xa0x\x85"), "\xa0x\x85");  // may be UTF-8 continuation bytes
  EXPECT_EQ(strip_python_whitespace("  "), "");
}

}  // namespace
}  // namespace squall
