// params: the remaining small httputil parsers — parse_header_params (Content-Type /
// Content-Disposition values, RFC 2231 continuations), parse_http_date (three date
// forms) and split_host_and_port. Invariants: parameter names are lower-case and
// unique and param() finds each of them; a parsed date formats to an IMF-fixdate that
// parses back to the same time; a port is only returned for 1-5 digits <= 65535.
#include <cctype>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/httputil.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);

  squall::HeaderParams hp = squall::parse_header_params(s);
  std::set<std::string> names;
  for (const auto& [name, value] : hp.params) {
    FUZZ_CHECK(names.insert(name).second);
    for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(hp.param(name).has_value());
  }

  std::optional<std::time_t> t = squall::parse_http_date(s, 1700000000);
  if (t) {
    std::string formatted = squall::format_http_date(*t);
    std::optional<std::time_t> back = squall::parse_http_date(formatted);
    FUZZ_CHECK(back.has_value() && *back == *t);
  }
  (void)squall::parse_http_date(s);

  auto [host, port] = squall::split_host_and_port(s);
  if (port) {
    size_t colon = s.rfind(':');
    FUZZ_CHECK(colon != std::string_view::npos);
    std::string_view digits = s.substr(colon + 1);
    FUZZ_CHECK(!digits.empty() && digits.size() <= 5);
    FUZZ_CHECK(host == s.substr(0, colon));
  } else {
    FUZZ_CHECK(host == s);
  }
  return 0;
}
