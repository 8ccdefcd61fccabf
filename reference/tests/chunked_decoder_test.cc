#include "squall/chunked_decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace squall {
namespace {

// Feeds `pieces` one after another the way a connection does (a buffer of unconsumed
// bytes, more appended on need_more) and returns the body, or the error.
struct Decoded {
  bool done = false;
  std::string body;
  std::vector<size_t> piece_sizes;
  std::optional<ParseError> error;
  size_t left_over = 0;  // bytes after the end of the message
};

Decoded decode(const std::vector<std::string>& pieces, size_t max_data = 1 << 20,
               const ChunkedDecoderLimits& limits = {}) {
  Decoded out;
  ChunkedDecoder decoder(limits);
  std::string buffer;
  size_t next = 0;
  for (;;) {
    ParseResult<ChunkedStep> step = decoder.step(buffer, max_data);
    if (!step) {
      out.error = step.error();
      return out;
    }
    if (step->kind == ChunkedStep::Kind::data) {
      out.body.append(step->data);
      out.piece_sizes.push_back(step->data.size());
    }
    buffer.erase(0, step->consumed);
    if (step->kind == ChunkedStep::Kind::done) {
      out.done = true;
      out.left_over = buffer.size();
      return out;
    }
    if (step->kind == ChunkedStep::Kind::need_more) {
      if (next == pieces.size()) return out;  // input ended before the message
      buffer += pieces[next++];
    }
  }
}

std::vector<std::string> bytewise(std::string_view s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

TEST(ChunkedDecoder, DecodesChunksAndStopsAtTheEndOfTheMessage) {
  Decoded d = decode({"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nGET / HTTP/1.1\r\n"});
  EXPECT_TRUE(d.done);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.body, "Wikipedia");
  EXPECT_EQ(d.left_over, std::string_view("GET / HTTP/1.1\r\n").size());
}

TEST(ChunkedDecoder, SameResultOneByteAtATime) {
  std::string message = "1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
  Decoded whole = decode({message});
  Decoded split = decode(bytewise(message));
  ASSERT_TRUE(whole.done);
  ASSERT_TRUE(split.done);
  EXPECT_EQ(whole.body, "abcdefghijklmnopqrstuvwxyz0123456789");
  EXPECT_EQ(split.body, whole.body);
}

TEST(ChunkedDecoder, DataPiecesAreBoundedByMaxData) {
  Decoded d = decode({"10\r\n0123456789abcdef\r\n0\r\n\r\n"}, 5);
  ASSERT_TRUE(d.done);
  EXPECT_EQ(d.body, "0123456789abcdef");
  EXPECT_EQ(d.piece_sizes, (std::vector<size_t>{5, 5, 5, 1}));
}

TEST(ChunkedDecoder, DataIsAViewIntoTheInput) {
  ChunkedDecoder decoder;
  std::string input = "3\r\nabc\r\n";
  ParseResult<ChunkedStep> step = decoder.step(input, 100);
  ASSERT_TRUE(step);
  ASSERT_EQ(step->kind, ChunkedStep::Kind::data);
  EXPECT_EQ(step->data.data(), input.data() + 3);
  EXPECT_EQ(step->consumed, 6u);
}

TEST(ChunkedDecoder, IncompleteInputNeedsMoreAndIsNotDone) {
  Decoded d = decode({"5\r\nab"});
  EXPECT_FALSE(d.done);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.body, "ab");
}

TEST(ChunkedDecoder, PartialSizeLineIsNotConsumed) {
  ChunkedDecoder decoder;
  ParseResult<ChunkedStep> step = decoder.step("1f", 100);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->kind, ChunkedStep::Kind::need_more);
  EXPECT_EQ(step->consumed, 0u);
}

TEST(ChunkedDecoder, RejectsBadSizeLines) {
  for (std::string bad : {"x\r\n", "-1\r\n", "+1\r\n", " 1\r\n", "1 \r\n\r\n", "\r\n", "1\n"}) {
    Decoded d = decode({bad + "a\r\n0\r\n\r\n"});
    ASSERT_TRUE(d.error) << bad;
    EXPECT_EQ(d.error->status, 400) << bad;
  }
}

TEST(ChunkedDecoder, RejectsDataNotFollowedByCRLF) {
  Decoded d = decode({"3\r\nabcX\r\n0\r\n\r\n"});
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->status, 400);
  EXPECT_EQ(d.error->reason, "Chunk data not followed by CRLF");
}

TEST(ChunkedDecoder, OverlongSizeLineIsAnErrorBeforeItsEnd) {
  // Leading zeros without end: rejected once the bound is reached, not buffered forever.
  std::string zeros(ChunkedDecoder::kMaxSizeLine + 256 + 10, '0');
  Decoded d = decode(bytewise(zeros));
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->status, 400);
}

TEST(ChunkedDecoder, BodyLargerThanTheLimitIs413) {
  ChunkedDecoderLimits limits;
  limits.max_body = 10;
  Decoded one = decode({"b\r\n"}, 100, limits);
  ASSERT_TRUE(one.error);
  EXPECT_EQ(one.error->status, 413);
  // The sum of chunks counts, and the error comes before the data of the chunk past it.
  Decoded sum = decode({"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"}, 100, limits);
  ASSERT_TRUE(sum.error);
  EXPECT_EQ(sum.error->status, 413);
  EXPECT_EQ(sum.body, "abcdef");
  Decoded exact = decode({"5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n"}, 100, limits);
  EXPECT_TRUE(exact.done);
}

TEST(ChunkedDecoder, HugeSizeDoesNotOverflow) {
  Decoded d = decode({"ffffffffffffffff\r\n"});
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->status, 413);
  Decoded more = decode({"10000000000000000\r\n"});
  ASSERT_TRUE(more.error);
}

TEST(ChunkedDecoder, TrailersAreValidatedAndBounded) {
  Decoded ok = decode({"0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n"});
  EXPECT_TRUE(ok.done);
  Decoded bad = decode({"0\r\nBad Name: x\r\n\r\n"});
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->status, 400);

  ChunkedDecoderLimits limits;
  limits.max_trailer_fields = 2;
  Decoded many = decode({"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"}, 100, limits);
  ASSERT_TRUE(many.error);
  EXPECT_EQ(many.error->status, 431);

  limits = {};
  limits.max_trailer_bytes = 16;
  Decoded big = decode(bytewise("0\r\nX-Long-Trailer: 0123456789\r\n\r\n"), 100, limits);
  ASSERT_TRUE(big.error);
  EXPECT_EQ(big.error->status, 431);
}

TEST(ChunkedDecoder, DoneIsStable) {
  ChunkedDecoder decoder;
  ParseResult<ChunkedStep> step = decoder.step("0\r\n\r\nrest", 10);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->kind, ChunkedStep::Kind::done);
  EXPECT_EQ(step->consumed, 5u);
  EXPECT_TRUE(decoder.done());
  ParseResult<ChunkedStep> again = decoder.step("rest", 10);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, ChunkedStep::Kind::done);
  EXPECT_EQ(again->consumed, 0u);
}

ChunkedDecoderLimits lenient_limits() {
  ChunkedDecoderLimits limits;
  limits.trailer_limits.policy = ParsePolicy::lenient();
  return limits;
}

TEST(ChunkedDecoder, RejectsBareLfInEveryLineByDefault) {
  for (std::string_view body : {"4\nWiki\r\n0\r\n\r\n", "4\r\nWiki\n0\r\n\r\n", "4\r\nWiki\r\n0\n\r\n",
                                "4\r\nWiki\r\n0\r\n\n", "4\r\nWiki\r\n0\r\nA: b\n\r\n", "4;a=b\nWiki\r\n0\r\n\r\n"}) {
    // Whole, and a byte at a time: the error comes as soon as the LF is here, with no wait.
    for (const auto& pieces : {std::vector<std::string>{std::string(body)}, bytewise(body)}) {
      Decoded d = decode(pieces);
      EXPECT_FALSE(d.done) << body;
      ASSERT_TRUE(d.error.has_value()) << body;
      EXPECT_EQ(d.error->status, 400) << body;
    }
  }
}

TEST(ChunkedDecoder, AcceptsBareLfInEveryLineWhenLenient) {
  for (std::string_view body : {"4\nWiki\r\n0\r\n\r\n", "4\r\nWiki\n0\r\n\r\n", "4\r\nWiki\r\n0\n\r\n",
                                "4\r\nWiki\r\n0\r\n\n", "4\r\nWiki\r\n0\r\nA: b\n\n", "4;a=b\nWiki\n0\n\n"}) {
    for (const auto& pieces : {std::vector<std::string>{std::string(body)}, bytewise(body)}) {
      Decoded d = decode(pieces, 1 << 20, lenient_limits());
      EXPECT_TRUE(d.done) << body;
      EXPECT_FALSE(d.error) << body;
      EXPECT_EQ(d.body, "Wiki") << body;
    }
  }
}

TEST(ChunkedDecoder, RejectsBareCrAtOnceUnderEitherPolicy) {
  for (const ChunkedDecoderLimits& limits : {ChunkedDecoderLimits{}, lenient_limits()}) {
    for (std::string_view body : {"4\rWiki", "4\r\nWiki\r\r", "4\r\nWiki\rX", "4\r\nWiki\r\n0\r\r",
                                  "4\r\nWiki\r\n0\r\n\r\r", "4\r\nWiki\r\n0\r\nA: b\r\r", "4;x\r;y\r\n"}) {
      // The input ends without the rest of the message: the decoder must not wait for it.
      for (const auto& pieces : {std::vector<std::string>{std::string(body)}, bytewise(body)}) {
        Decoded d = decode(pieces, 1 << 20, limits);
        ASSERT_TRUE(d.error.has_value()) << body;
        EXPECT_EQ(d.error->status, 400) << body;
      }
    }
  }
}

}  // namespace
}  // namespace squall
