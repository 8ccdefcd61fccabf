// FuzzInput: splits one fuzzer input into the choices a target needs (a small stand-in
// for libFuzzer's FuzzedDataProvider, which gcc builds do not have).
//
// Choices are taken from the FRONT of the input, the payload is what remains, so a seed
// file is "a few choice bytes + a readable HTTP message" and stays easy to write by hand.
// When the input runs out every choice is 0, so any input is valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>
#include <vector>

namespace squall_fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(reinterpret_cast<const char*>(data)), size_(size) {}

  // One byte (0 when exhausted).
  uint8_t byte() {
    if (pos_ >= size_) return 0;
    return static_cast<uint8_t>(data_[pos_++]);
  }
  // A value in [lo, hi] from one or two bytes.
  size_t range(size_t lo, size_t hi) {
    if (hi <= lo) return lo;
    size_t span = hi - lo + 1;
    size_t v = byte();
    if (span > 256) v = (v << 8) | byte();
    return lo + v % span;
  }
  bool flag() { return byte() & 1; }
  // Everything not consumed yet.
  std::string_view rest() {
    std::string_view r(data_ + pos_, size_ - pos_);
    pos_ = size_;
    return r;
  }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Splits `payload` into pieces whose sizes come from `sizes` (each byte is a piece size
// 1..256, cycled); an empty `sizes` gives one piece. Used to deliver bytes in
// fuzzer-chosen fragments.
inline std::vector<std::string_view> split_pieces(std::string_view payload, std::string_view sizes) {
  std::vector<std::string_view> pieces;
  if (sizes.empty()) {
    if (!payload.empty()) pieces.push_back(payload);
    return pieces;
  }
  size_t i = 0;
  while (!payload.empty()) {
    size_t n = static_cast<uint8_t>(sizes[i++ % sizes.size()]) + 1;
    if (n > payload.size()) n = payload.size();
    pieces.push_back(payload.substr(0, n));
    payload.remove_prefix(n);
  }
  return pieces;
}

// A failed invariant: print what and where, then abort so libFuzzer (or the replay
// driver under CTest) reports a crash with this input.
[[noreturn]] inline void fail(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
  std::abort();
}

}  // namespace squall_fuzz

#define FUZZ_CHECK(cond)                                          \
  do {                                                            \
    if (!(cond)) ::squall_fuzz::fail(__FILE__, __LINE__, #cond);  \
  } while (0)
