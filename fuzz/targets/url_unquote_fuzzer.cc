// url_unquote: percent-decoding (Python's unquote_to_bytes, optionally '+' as space).
// Invariants: the output is never longer than the input; input without '%' (and '+')
// comes back unchanged; percent-encoding every byte and decoding gives the input back;
// decoding is the same as a byte-by-byte reference decoder.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/httputil.h"

namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string reference(std::string_view s, bool plus) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
      i += 2;
    } else if (plus && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  squall_fuzz::FuzzInput in(data, size);
  bool plus = in.flag();
  std::string_view s = in.rest();
  std::string out = squall::url_unquote(s, plus);
  FUZZ_CHECK(out.size() <= s.size());
  FUZZ_CHECK(out == reference(s, plus));
  if (s.find('%') == std::string_view::npos && (!plus || s.find('+') == std::string_view::npos)) FUZZ_CHECK(out == s);
  static const char kHex[] = "0123456789ABCDEF";
  std::string quoted;
  for (unsigned char c : s) {
    quoted.push_back('%');
    quoted.push_back(kHex[c >> 4]);
    quoted.push_back(kHex[c & 15]);
  }
  FUZZ_CHECK(squall::url_unquote(quoted, plus) == s);
  return 0;
}
