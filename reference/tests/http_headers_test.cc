#include "squall/http_headers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace squall {
namespace {

std::vector<HeaderField> all_fields(const HTTPHeaders& h) { return {h.begin(), h.end()}; }

TEST(HTTPHeaders, LookupIgnoresAsciiCase) {
  HTTPHeaders h;
  h.add("Content-Type", "text/html");
  EXPECT_TRUE(h.contains("content-type"));
  EXPECT_TRUE(h.contains("CONTENT-TYPE"));
  EXPECT_EQ(h.get_first("cOnTeNt-TyPe"), "text/html");
  EXPECT_FALSE(h.contains("Content-Typ"));
  EXPECT_FALSE(h.contains("Content-Type "));
}

TEST(HTTPHeaders, GetJoinsRepeatedValuesWithComma) {
  HTTPHeaders h;
  h.add("Set-Cookie", "A=B");
  h.add("set-cookie", "C=D");
  EXPECT_EQ(h.get("SET-COOKIE"), "A=B,C=D");
  EXPECT_EQ(h.get_first("Set-Cookie"), "A=B");
}

TEST(HTTPHeaders, GetOfMissingNameIsNulloptOrDefault) {
  HTTPHeaders h{{"Host", "example.com"}};
  EXPECT_EQ(h.get("Accept"), std::nullopt);
  EXPECT_EQ(h.get_first("Accept"), std::nullopt);
  EXPECT_EQ(h.get("Accept", "*/*"), "*/*");
  EXPECT_EQ(h.get("host", "*/*"), "example.com");
}

TEST(HTTPHeaders, GetListReturnsEveryValueInOrder) {
  HTTPHeaders h;
  h.add("X-A", "1");
  h.add("X-B", "2");
  h.add("x-a", "3");
  EXPECT_EQ(h.get_list("X-A"), (std::vector<std::string_view>{"1", "3"}));
  EXPECT_TRUE(h.get_list("X-C").empty());
  EXPECT_EQ(h.count("x-A"), 2u);
}

TEST(HTTPHeaders, IterationKeepsInsertionOrderAndSpelling) {
  HTTPHeaders h;
  h.add("host", "a");
  h.add("X-Custom-HEADER", "b");
  h.add("Host", "c");
  const std::vector<HeaderField> expected{{"host", "a"}, {"X-Custom-HEADER", "b"}, {"Host", "c"}};
  EXPECT_EQ(all_fields(h), expected);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1], (HeaderField{"X-Custom-HEADER", "b"}));
}

TEST(HTTPHeaders, SetReplacesAllValuesAtFirstPosition) {
  HTTPHeaders h;
  h.add("A", "1");
  h.add("B", "2");
  h.add("a", "3");
  h.add("C", "4");
  h.set("A", "9");
  const std::vector<HeaderField> expected{{"A", "9"}, {"B", "2"}, {"C", "4"}};
  EXPECT_EQ(all_fields(h), expected);
}

TEST(HTTPHeaders, SetOfASingleLineKeepsItsPlaceAndTheOthers) {
  HTTPHeaders h{{"Content-Type", "text/html; charset=UTF-8"}, {"Date", "today"}};
  h.mark_fields_checked();
  h.set("Content-Type", "text/plain");  // shorter: rewritten where it was
  EXPECT_FALSE(h.fields_checked());
  h.set("Date", "a much longer value than before");  // longer: stored anew, same place
  h.set("content-type", "x");  // another spelling: the new one is kept, as Tornado's dict
  const std::vector<HeaderField> expected{{"content-type", "x"}, {"Date", "a much longer value than before"}};
  EXPECT_EQ(all_fields(h), expected);
  h.set("Date", h[1].value.substr(2));  // a view into the headers themselves
  EXPECT_EQ(h.get_first("Date"), "much longer value than before");
  EXPECT_EQ(h.size(), 2u);
}

// An empty value may have no bytes at all (a default string_view's null pointer): set
// over an empty or a longer value, in wire form or not, it leaves an empty line in place.
TEST(HTTPHeaders, SetOfAnEmptyValueWithNoBytesKeepsTheLineEmpty) {
  HTTPHeaders wire;
  wire.add("X-A", "");
  wire.add("X-B", "b");
  wire.set("X-A", std::string_view{});
  wire.set("X-B", std::string_view{});
  const std::vector<HeaderField> expected{{"X-A", ""}, {"X-B", ""}};
  EXPECT_EQ(all_fields(wire), expected);
  EXPECT_EQ(wire.wire_lines(), "X-A: \r\nX-B: \r\n");
  std::vector<HeaderField> parsed{{"X-A", ""}, {"X-B", "b"}};
  HTTPHeaders fields = HTTPHeaders::from_fields(parsed);
  fields.set("X-A", std::string_view{});
  fields.set("X-B", std::string_view{});
  EXPECT_EQ(all_fields(fields), expected);
}

TEST(HTTPHeaders, NamesThatDifferOnlyInTheCaseBitOfAPunctuationByteDiffer) {
  // '^' and '~' (both token characters) differ in bit 0x20 only, like 'a' and 'A'.
  HTTPHeaders h{{"^x", "1"}, {"Date", "d"}};
  EXPECT_FALSE(h.contains("~x"));
  EXPECT_FALSE(h.contains("~X"));
  EXPECT_EQ(h.get_first("^X"), "1");
  EXPECT_FALSE(h.contains("Vary"));  // same length as Date
  EXPECT_EQ(h.get_first("dATE"), "d");
}

TEST(HTTPHeaders, FindGivesTheIndexOfEachLineOfAName) {
  HTTPHeaders h{{"A", "1"}, {"B", "2"}, {"a", "3"}};
  EXPECT_EQ(h.find("a"), 0u);
  EXPECT_EQ(h.find("A", 1), 2u);
  EXPECT_EQ(h.find("A", 3), h.size());
  EXPECT_EQ(h.find("C"), h.size());
  EXPECT_EQ(h.find("B", 99), h.size());
}

TEST(HTTPHeaders, FromFieldsOfOneHeadCopiesItOnce) {
  std::string head = "Host: example.com\r\nX-Empty: \r\nAccept:  */* \r\n";
  const std::string_view v(head);
  std::vector<HeaderField> fields{{v.substr(0, 4), v.substr(6, 11)},
                                  {v.substr(19, 7), std::string_view()},  // an empty value
                                  {v.substr(30, 6), v.substr(39, 3)}};
  HTTPHeaders h = HTTPHeaders::from_fields(fields);
  head.assign(head.size(), '#');  // the headers hold their own copy
  const std::vector<HeaderField> expected{{"Host", "example.com"}, {"X-Empty", ""}, {"Accept", "*/*"}};
  EXPECT_EQ(all_fields(h), expected);
  h.set("Accept", "text/html");  // and remain an ordinary set of headers
  h.add("Via", "1.1 proxy");
  EXPECT_EQ(h.get_first("accept"), "text/html");
  EXPECT_EQ(h.get_first("via"), "1.1 proxy");
  EXPECT_EQ(h.get_first("x-empty"), "");
}

TEST(HTTPHeaders, FromFieldsScatteredInMemoryCopiesEachLine) {
  const std::string name = "Name", far_value(100000, 'v');
  std::vector<HeaderField> fields{{name, "literal"}, {"Other", far_value}};
  HTTPHeaders h = HTTPHeaders::from_fields(fields);
  EXPECT_EQ(h.get_first("name"), "literal");
  EXPECT_EQ(h.get_first("other"), far_value);
}

TEST(HTTPHeaders, SetOfNewNameAppends) {
  HTTPHeaders h{{"A", "1"}};
  h.set("B", "2");
  EXPECT_EQ(all_fields(h), (std::vector<HeaderField>{{"A", "1"}, {"B", "2"}}));
}

TEST(HTTPHeaders, RemoveDeletesEveryLineOfThatName) {
  HTTPHeaders h{{"A", "1"}, {"B", "2"}, {"a", "3"}};
  EXPECT_EQ(h.remove("A"), 2u);
  EXPECT_FALSE(h.contains("a"));
  EXPECT_EQ(all_fields(h), (std::vector<HeaderField>{{"B", "2"}}));
  EXPECT_EQ(h.remove("A"), 0u);
}

TEST(HTTPHeaders, AddAcceptsViewsIntoItself) {
  HTTPHeaders h{{"A", std::string(100, 'x')}};
  for (int i = 0; i < 20; ++i) h.add(h[0].name, *h.get_first("A"));  // forces regrowth
  EXPECT_EQ(h.count("A"), 21u);
  for (const HeaderField f : h) EXPECT_EQ(f.value, std::string(100, 'x'));
  h.set(h[0].name, h[3].value);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.get_first("a"), std::string(100, 'x'));
}

// A longer value for a single line is appended to the arena, which may move: a value
// that is a view into the headers themselves is copied first; the line keeps its place.
TEST(HTTPHeaders, SetOfALongerValueFromItselfKeepsItsPlace) {
  const std::string ys(300, 'y');
  HTTPHeaders h{{"A", "1"}, {"B", ys}, {"C", "3"}};
  h.set("A", h[1].value);
  const std::vector<HeaderField> expected{{"A", ys}, {"B", ys}, {"C", "3"}};
  EXPECT_EQ(all_fields(h), expected);
  h.set("C", h[0].value.substr(100));  // a view into the value just appended
  EXPECT_EQ(h.get_first("c"), ys.substr(100));
  EXPECT_EQ(h.size(), 3u);
}

TEST(HTTPHeaders, RepeatedSetDoesNotGrowWithoutBound) {
  HTTPHeaders h;
  h.add("Keep", "me");
  for (int i = 0; i < 10000; ++i) h.set("X-Counter", std::to_string(i) + std::string(50, 'p'));
  EXPECT_EQ(h.get("X-Counter"), "9999" + std::string(50, 'p'));
  EXPECT_EQ(h.get_first("Keep"), "me");
  EXPECT_EQ(h.size(), 2u);
}

TEST(HTTPHeaders, FromFieldsCopiesTheBytes) {
  std::string buffer = "Host: a";
  std::vector<HeaderField> fields{{std::string_view(buffer).substr(0, 4), std::string_view(buffer).substr(6)}};
  HTTPHeaders h = HTTPHeaders::from_fields(fields);
  buffer.assign(buffer.size(), '#');
  EXPECT_EQ(h.get_first("host"), "a");
}

TEST(HTTPHeaders, CopyIsIndependent) {
  HTTPHeaders a{{"A", "1"}};
  HTTPHeaders b = a;
  b.set("A", "2");
  EXPECT_EQ(a.get_first("A"), "1");
  EXPECT_EQ(b.get_first("A"), "2");
}

TEST(HTTPHeaders, ClearEmptiesEverything) {
  HTTPHeaders h{{"A", "1"}, {"B", "2"}};
  h.clear();
  EXPECT_TRUE(h.empty());
  EXPECT_TRUE(h.begin() == h.end());
  h.add("C", "3");
  EXPECT_EQ(all_fields(h), (std::vector<HeaderField>{{"C", "3"}}));
}

// The mark that lets a writer skip validation covers only the lines present when it was
// given: any line stored afterwards (add, set, a clear and refill) withdraws it.
TEST(HTTPHeaders, StoringALineWithdrawsTheCheckedMark) {
  HTTPHeaders h{{"A", "1"}};
  EXPECT_FALSE(h.fields_checked());
  h.mark_fields_checked();
  EXPECT_TRUE(h.fields_checked());
  h.add("B", "2");
  EXPECT_FALSE(h.fields_checked());
  h.mark_fields_checked();
  h.set("A", "3");
  EXPECT_FALSE(h.fields_checked());
  h.mark_fields_checked();
  h.clear();
  EXPECT_FALSE(h.fields_checked());
}

// assign() makes a copy of the lines, their marks and note, with the room asked for:
// lines added within it do not move the arena. Its own lines go; a set not in wire form
// is copied as it is.
TEST(HTTPHeaders, AssignCopiesTheLinesWithTheRoomAskedFor) {
  HTTPHeaders from{{"Server", "s"}, {"Content-Type", "text/html"}, {"Date", "d"}};
  from.mark_fields_checked();
  from.note_framing({.date = true, .server = true});
  HTTPHeaders h{{"Old", "line"}};
  h.assign(from, 8, 256);
  EXPECT_EQ(all_fields(h), all_fields(from));
  ASSERT_TRUE(h.wire_lines().has_value());
  EXPECT_EQ(*h.wire_lines(), "Server: s\r\nContent-Type: text/html\r\nDate: d\r\n");
  EXPECT_TRUE(h.fields_checked());
  ASSERT_NE(h.noted_framing(), nullptr);
  EXPECT_EQ(*h.noted_framing(), (FramingLines{.date = true, .server = true}));
  const char* arena = h.wire_lines()->data();
  for (int i = 0; i < 5; ++i) h.add("X-Line", "a value of some length");  // 5 x 32 bytes
  EXPECT_EQ(h.wire_lines()->data(), arena) << "the room asked for was not made";
  EXPECT_EQ(h.size(), 8u);
  EXPECT_EQ(all_fields(from).size(), 3u) << "the source is left alone";
  h.assign(h, 8, 256);  // onto itself: nothing changes
  EXPECT_EQ(h.size(), 8u);
  const std::string block = "A:1\r\nB:2\r\n";
  const std::string_view view(block);
  const std::vector<HeaderField> fields{{view.substr(0, 1), view.substr(2, 1)}, {view.substr(5, 1), view.substr(7, 1)}};
  const HTTPHeaders parsed = HTTPHeaders::from_fields(fields);
  h.assign(parsed, 8, 256);
  EXPECT_EQ(all_fields(h), (std::vector<HeaderField>{{"A", "1"}, {"B", "2"}}));
  EXPECT_FALSE(h.wire_lines().has_value());
  EXPECT_FALSE(h.fields_checked());
  EXPECT_EQ(h.noted_framing(), nullptr);
}

// The note of what the framing lines say holds for the lines present when it was given:
// any line stored or removed afterwards withdraws it (each route on a fresh note); reads
// and a copy keep it.
TEST(HTTPHeaders, StoringOrRemovingALineWithdrawsTheFramingNote) {
  const FramingLines framing{.content_length = 2, .has_content_length = true, .date = true};
  const std::vector<std::function<void(HTTPHeaders&)>> changes{
      [](HTTPHeaders& h) { h.add("X", "1"); },
      [](HTTPHeaders& h) { h.set("Content-Length", "3"); },    // one line, rewritten in place
      [](HTTPHeaders& h) { h.set("Content-Length", "12345"); },  // a longer value
      [](HTTPHeaders& h) { h.set("Date", "y"); },
      [](HTTPHeaders& h) { h.remove("Content-Length"); },
      [](HTTPHeaders& h) { h.clear(); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    HTTPHeaders h{{"Content-Length", "2"}, {"Date", "x"}};
    EXPECT_EQ(h.noted_framing(), nullptr);
    h.note_framing(framing);
    ASSERT_NE(h.noted_framing(), nullptr);
    EXPECT_EQ(*h.noted_framing(), framing);
    EXPECT_EQ(h.get_first("Content-Length"), "2");
    EXPECT_TRUE(h.contains("Date"));
    const HTTPHeaders copy = h;
    ASSERT_NE(copy.noted_framing(), nullptr) << "a copy keeps the note";
    EXPECT_EQ(*copy.noted_framing(), framing);
    changes[i](h);
    EXPECT_EQ(h.noted_framing(), nullptr) << "change " << i;
  }
}

TEST(HeaderNameEquals, ComparesAsciiCaseInsensitively) {
  EXPECT_TRUE(header_name_equals("ETag", "etag"));
  EXPECT_FALSE(header_name_equals("ETag", "etags"));
  // Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by the case bit.
  EXPECT_FALSE(header_name_equals("@", "`"));
  EXPECT_FALSE(header_name_equals("\xC0", "\xE0"));
}

// Every pair of byte values, at the start, inside and at the end of a long name, is
// judged as the definition says: equal, or equal once ASCII letters are lowered (bytes of
// 0x80 and above, and punctuation one case bit apart, stay different).
TEST(HeaderNameEquals, EveryPairOfBytesAtEveryPlace) {
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  const std::string base = "Accept-Encoding-X";
  for (std::size_t at : {std::size_t{0}, std::size_t{7}, std::size_t{8}, std::size_t{16}}) {
    for (int x = 0; x < 256; ++x) {
      for (int y = 0; y < 256; ++y) {
        std::string a = base, b = base;
        a[at] = static_cast<char>(x);
        b[at] = static_cast<char>(y);
        const bool expected = x == y || lower(static_cast<unsigned char>(x)) == lower(static_cast<unsigned char>(y));
        ASSERT_EQ(header_name_equals(a, b), expected) << "at " << at << ": " << x << " vs " << y;
      }
    }
  }
  EXPECT_TRUE(header_name_equals("CONTENT-TYPE", "content-type"));
  EXPECT_FALSE(header_name_equals("Content-Typf", "content-type"));
  EXPECT_FALSE(header_name_equals("Content-Length", "Content-Lengti"));
}

// Lines of every name and value length from 0 to 40 bytes (copied in pieces of different
// sizes) read back byte for byte, in order, also after the arena has grown.
TEST(HTTPHeaders, StoresNamesAndValuesOfEveryLengthExactly) {
  HTTPHeaders headers;
  std::vector<std::pair<std::string, std::string>> expected;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string name, value;
    for (std::size_t i = 0; i < n + 1; ++i) name.push_back(static_cast<char>('a' + (i + n) % 26));
    for (std::size_t i = 0; i < n; ++i) value.push_back(static_cast<char>('0' + (i * 7 + n) % 10));
    headers.add(name, value);
    expected.emplace_back(name, value);
  }
  ASSERT_EQ(headers.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(headers[i].name, expected[i].first) << i;
    EXPECT_EQ(headers[i].value, expected[i].second) << i;
  }
}

// Names of every length up to three words, a difference at every place (in the full
// words and in the word that ends the name): each byte against itself, its other case
// and its neighbour.
TEST(HeaderNameEquals, EveryLengthAndPlace) {
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  for (std::size_t length = 1; length <= 24; ++length) {
    const std::string base = std::string("X-Forwarded-Proto-Extras").substr(0, length);
    for (std::size_t at = 0; at < length; ++at) {
      for (int x = 0; x < 256; ++x) {
        for (int y : {x, x ^ 0x20, (x + 1) & 0xff}) {
          std::string a = base, b = base;
          a[at] = static_cast<char>(x);
          b[at] = static_cast<char>(y);
          const bool expected = x == y || lower(static_cast<unsigned char>(x)) == lower(static_cast<unsigned char>(y));
          ASSERT_EQ(header_name_equals(a, b), expected) << "length " << length << " at " << at << ": " << x << " vs " << y;
        }
      }
    }
  }
}

// Lookups compare names as header_name_equals does (long names by the word): a name
// differing in any byte at any place, only in case or not at all, of every length.
TEST(HTTPHeaders, LookupsMatchNamesAsHeaderNameEqualsAtEveryLengthAndPlace) {
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  for (std::size_t length = 1; length <= 24; ++length) {
    const std::string base = std::string("X-Forwarded-Proto-Extras").substr(0, length);
    for (std::size_t at = 0; at < length; ++at) {
      for (int x = 0; x < 256; x += 3) {
        for (int y : {x, x ^ 0x20, (x + 1) & 0xff}) {
          std::string stored = base, looked_up = base;
          stored[at] = static_cast<char>(x);
          looked_up[at] = static_cast<char>(y);
          HTTPHeaders h;
          h.add("Date", "d");
          h.add(stored, "v");
          const bool expected = x == y || lower(static_cast<unsigned char>(x)) == lower(static_cast<unsigned char>(y));
          ASSERT_EQ(h.contains(looked_up), expected) << "length " << length << " at " << at << ": " << x << " vs " << y;
          ASSERT_EQ(h.find(looked_up), expected ? 1u : 2u);
        }
      }
    }
  }
}

// The lines as a writer serialises them one by one.
std::string lines_of(const HTTPHeaders& h) {
  std::string out;
  for (HeaderField f : h) out.append(f.name).append(": ").append(f.value).append("\r\n");
  return out;
}

// A response head is copied as one block when the set holds its lines in wire form: that
// block must be exactly the lines, in order, after whatever add/set/remove did (values
// shorter, longer and as long as before, lines in the middle removed, the arena grown).
TEST(HTTPHeaders, WireLinesAreTheLinesInOrderAfterEveryChange) {
  HTTPHeaders h;
  ASSERT_EQ(h.wire_lines(), "");
  const std::string names[] = {"Server", "Content-Type", "Date", "Etag", "X-A", "Vary"};
  std::uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int step = 0; step < 3000; ++step) {
    const std::string& name = names[next() % 6];
    const std::string value(next() % 40, static_cast<char>('a' + step % 26));
    switch (next() % 4) {
      case 0: h.add(name, value); break;
      case 1: h.remove(name); break;
      default:
        // set() merges repeated lines (a form the writer copies line by line): only on a
        // name that has one line here, or none.
        if (h.count(name) <= 1) h.set(name, value);
        break;
    }
    const std::optional<std::string_view> wire = h.wire_lines();
    ASSERT_TRUE(wire.has_value()) << "step " << step;
    ASSERT_EQ(*wire, lines_of(h)) << "step " << step;
  }
}

TEST(HTTPHeaders, SetOfAValueFromItselfKeepsTheWireForm) {
  HTTPHeaders h{{"A", "1"}, {"B", "a longer value"}, {"C", "3"}};
  h.set("A", h[1].value);            // longer: the arena moves under the view
  h.set("B", h[1].value.substr(2));  // shorter, from the line itself
  EXPECT_EQ(all_fields(h), (std::vector<HeaderField>{{"A", "a longer value"}, {"B", "longer value"}, {"C", "3"}}));
  EXPECT_EQ(h.wire_lines(), "A: a longer value\r\nB: longer value\r\nC: 3\r\n");
}

// Sets that do not hold their lines in wire form say so (the writer then copies line by
// line); compaction puts them back into it.
TEST(HTTPHeaders, WireLinesAbsentForParsedHeadsAndMergedLines) {
  const std::string head = "Host:a\r\nAccept:  b";
  std::vector<HeaderField> fields{{std::string_view(head).substr(0, 4), std::string_view(head).substr(5, 1)},
                                  {std::string_view(head).substr(8, 6), std::string_view(head).substr(17)}};
  EXPECT_EQ(HTTPHeaders::from_fields(fields).wire_lines(), std::nullopt);
  HTTPHeaders merged{{"A", "1"}, {"B", "2"}, {"a", "3"}};
  merged.set("A", "4");
  EXPECT_EQ(merged.wire_lines(), std::nullopt);
  EXPECT_EQ(lines_of(merged), "A: 4\r\nB: 2\r\n");
  merged.clear();
  merged.add("C", "5");
  EXPECT_EQ(merged.wire_lines(), "C: 5\r\n");
  HTTPHeaders compacted{{"K", "v"}, {"X", "1"}, {"x", "2"}};
  for (int i = 0; i < 200; ++i) compacted.set("X", std::string(100 + i % 2 * 100, 'v'));
  ASSERT_TRUE(compacted.wire_lines().has_value());  // merged once, then compacted
  EXPECT_EQ(*compacted.wire_lines(), lines_of(compacted));
}

TEST(NormalizeName, ProducesHttpHeaderCase) {
  EXPECT_EQ(normalize_name("coNtent-TYPE"), "Content-Type");
  EXPECT_EQ(normalize_name("x-forwarded-for"), "X-Forwarded-For");
  EXPECT_EQ(normalize_name("ETAG"), "Etag");
  EXPECT_EQ(normalize_name("a--b"), "A--B");
  EXPECT_EQ(normalize_name(""), "");
}

}  // namespace
}  // namespace squall
