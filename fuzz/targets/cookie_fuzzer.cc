// cookie: parse_cookie (Tornado's browser-like parser) and is_legal_cookie_name.
// Invariants: names are unique (later
// duplicates replace earlier ones); names and values carry no surrounding whitespace;
// the output is never larger than the input; parsing is deterministic.
#include <set>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/httputil.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  auto cookies = squall::parse_cookie(header);
  std::set<std::string> names;
  size_t total = 0;
  for (const auto& [name, value] : cookies) {
    // ("", "") is possible: `""` is a non-empty value that unquotes to "" (as in Tornado).
    FUZZ_CHECK(names.insert(name).second);
    total += name.size() + value.size();
    if (!name.empty()) FUZZ_CHECK(name.front() != ' ' && name.back() != ' ');
    (void)squall::is_legal_cookie_name(name);
  }
  FUZZ_CHECK(total <= size);
  FUZZ_CHECK(squall::parse_cookie(header) == cookies);
  return 0;
}
