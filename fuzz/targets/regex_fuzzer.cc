// regex: IOStream::read_until_regex and read_until over a local socketpair, the input
// delivered in fuzzer-chosen pieces with a fuzzer-chosen read_chunk_size, checked
// against a one-shot search of the whole input (differential):
//   - a match ending at m <= max_bytes: the read returns exactly input[0, m) and a
//     following read_until_close returns exactly input[m, end) (nothing lost or doubled);
//   - a match ending past max_bytes, or no match in more than max_bytes bytes:
//     UnsatisfiableReadError (directly or as StreamClosedError::real_error());
//   - no match otherwise: StreamClosedError at EOF.
// The patterns come from a small fixed set of "prefix-stable" patterns (once a prefix of
// the input contains a match, the leftmost match of every longer input ends at the same
// place), so the result must not depend on how the input was split.
//
// Input layout: [mode][pattern][max_bytes: 2 bytes][read_chunk_size][n_sizes][sizes...]
// then the payload.
#include <re2/re2.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/future.h"
#include "squall/iostream.h"
#include "squall/task.h"
#include "stream_harness.h"

namespace {

using namespace squall;
using squall_fuzz::FuzzInput;

// Prefix-stable patterns (see above); Python-bytes semantics (Latin-1).
constexpr std::string_view kPatterns[] = {
    "\r?\n\r?\n",  // the head terminator HTTP1Connection used to search for
    "\r\n\r\n",
    "\r\n",
    "\n",
    "[0-9]+;",
    "(?i)content-length:",
    "HTTP/1\\.[01] [0-9][0-9][0-9]",
    "--[a-z]+\r\n",
    "\\x00\\xff",
    "x*?",  // always the empty match at 0 (greedy "x*" would end wherever the buffer ends)
};
constexpr std::string_view kDelimiters[] = {"\r\n", "\r\n\r\n", "\n", "--b\r\n", "\xff\x00", "aaab"};

enum class Outcome { ok, unsatisfiable, closed, other };

struct Result {
  Outcome outcome = Outcome::other;
  std::string data;
  std::string rest;
};

Outcome classify(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const UnsatisfiableReadError&) {
    return Outcome::unsatisfiable;
  } catch (const StreamClosedError& closed) {
    if (closed.real_error()) return classify(closed.real_error());
    return Outcome::closed;
  } catch (...) {
    return Outcome::other;
  }
}

Task<void> read_one(IOStream& stream, bool use_regex, std::string_view what, std::optional<size_t> max_bytes,
                    Result& result) {
  try {
    if (use_regex) {
      result.data = co_await stream.read_until_regex(what, max_bytes);
    } else {
      result.data = co_await stream.read_until(std::string(what), max_bytes);
    }
    result.outcome = Outcome::ok;
  } catch (...) {
    result.outcome = classify(std::current_exception());
    co_return;
  }
  try {
    result.rest = co_await stream.read_until_close();
  } catch (...) {
    result.outcome = Outcome::other;
  }
}

// The one-shot oracle over the whole input.
Result expected(bool use_regex, std::string_view what, std::optional<size_t> max_bytes, std::string_view input) {
  Result r;
  std::optional<size_t> end;
  if (!input.empty()) {  // the stream never searches an empty buffer
    if (use_regex) {
      RE2::Options options;
      options.set_encoding(RE2::Options::EncodingLatin1);
      options.set_log_errors(false);
      static thread_local std::unique_ptr<RE2> cache[std::size(kPatterns)];
      size_t index = 0;
      while (kPatterns[index] != what) ++index;
      if (!cache[index]) cache[index] = std::make_unique<RE2>(std::string(what), options);
      re2::StringPiece text(input.data(), input.size());
      re2::StringPiece match;
      if (cache[index]->Match(text, 0, text.size(), RE2::UNANCHORED, &match, 1)) {
        end = static_cast<size_t>(match.data() - text.data()) + match.size();
      }
    } else {
      size_t pos = input.find(what);
      if (pos != std::string_view::npos) end = pos + what.size();
    }
  }
  if (end) {
    if (max_bytes && *end > *max_bytes) {
      r.outcome = Outcome::unsatisfiable;
    } else {
      r.outcome = Outcome::ok;
      r.data = std::string(input.substr(0, *end));
      r.rest = std::string(input.substr(*end));
    }
  } else if (max_bytes && input.size() > *max_bytes) {
    r.outcome = Outcome::unsatisfiable;
  } else {
    r.outcome = Outcome::closed;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  FuzzInput in(data, size);
  bool use_regex = !(in.byte() & 1);
  uint8_t which = in.byte();
  std::string_view what = use_regex ? kPatterns[which % std::size(kPatterns)]
                                    : kDelimiters[which % std::size(kDelimiters)];
  size_t mb = in.range(0, 65535);
  std::optional<size_t> max_bytes;
  if (mb != 0) max_bytes = mb % 4096;  // 0 means no limit; small limits are interesting
  IOStreamOptions options;
  options.read_chunk_size = in.range(1, 256);
  size_t n_sizes = in.range(0, 16);
  std::string sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(static_cast<char>(in.byte()));
  std::string_view payload = in.rest();

  Result got;
  {
    squall_fuzz::StreamHarness harness;
    std::unique_ptr<IOStream> stream = harness.make_stream(options);
    harness.feed(squall_fuzz::split_pieces(payload, sizes));
    harness.loop().run_sync([&] { return read_one(*stream, use_regex, what, max_bytes, got); });
    stream.reset();
  }

  Result want = expected(use_regex, what, max_bytes, payload);
  if (got.outcome != want.outcome) {
    std::fprintf(stderr, "outcome %d, expected %d\n", static_cast<int>(got.outcome), static_cast<int>(want.outcome));
    FUZZ_CHECK(got.outcome == want.outcome);
  }
  if (want.outcome == Outcome::ok) {
    FUZZ_CHECK(got.data == want.data);
    FUZZ_CHECK(got.rest == want.rest);
  }
  return 0;
}
