// query: parse_query (Python's parse_qsl with '+' as space, as Tornado uses it).
// Invariants: names and values together never exceed the input; every value comes
// from a pair of the input (same count as a reference split on '&'); with
// keep_blank_values=false no value is empty; the MultiDict index agrees with a scan.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/httputil.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  squall_fuzz::FuzzInput in(data, size);
  bool keep_blank = !in.flag();
  std::string_view q = in.rest();
  squall::Arguments args = squall::parse_query(q, keep_blank);
  size_t total = 0;
  size_t values = 0;
  for (const auto& entry : args) {
    total += entry.name.size();
    const std::vector<std::string>* found = args.find(entry.name);
    FUZZ_CHECK(found == &entry.values || (found && *found == entry.values));
    FUZZ_CHECK(!entry.values.empty());
    for (const std::string& v : entry.values) {
      total += v.size();
      ++values;
      if (!keep_blank) FUZZ_CHECK(!v.empty());
    }
  }
  FUZZ_CHECK(total <= q.size());
  // Reference count of non-empty '&'-separated pairs.
  size_t pairs = 0;
  size_t start = 0;
  while (start <= q.size()) {
    size_t amp = q.find('&', start);
    if (amp == std::string_view::npos) amp = q.size();
    if (amp > start) ++pairs;
    start = amp + 1;
  }
  FUZZ_CHECK(values <= pairs);
  if (keep_blank) FUZZ_CHECK(values == pairs);
  return 0;
}
