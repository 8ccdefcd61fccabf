// form: parse_body_arguments for application/x-www-form-urlencoded and
// multipart/form-data bodies (and parse_multipart_form_data directly), with the
// content type (and multipart boundary, quoted or not) chosen by the fuzzer or taken
// from the first line of the input. Invariants: on error nothing is added; on success
// the decoded fields and files never exceed the body; every file has a non-empty
// filename; parsing twice gives the same result.
//
// Input layout: [mode] then, for mode % 4 == 3, "content-type\n" then the body.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "squall/httputil.h"

namespace {

using namespace squall;

size_t size_of(const Arguments& args, const Files& files) {
  size_t total = 0;
  for (const auto& e : args) {
    for (const std::string& v : e.values) total += v.size();
  }
  for (const auto& e : files) {
    for (const HTTPFile& f : e.values) {
      total += f.body.size();
      FUZZ_CHECK(!f.filename.empty());
      // content_type may be empty: a part's "Content-Type:" with an empty value is kept
      // as is (Tornado's headers.get("Content-Type", "application/unknown") does the same).
    }
  }
  return total;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  squall_fuzz::FuzzInput in(data, size);
  uint8_t mode = in.byte();
  std::string_view body = in.rest();
  std::string content_type;
  switch (mode % 4) {
    case 0:
      content_type = "application/x-www-form-urlencoded";
      break;
    case 1:
      content_type = "multipart/form-data; boundary=b";
      break;
    case 2:
      content_type = "multipart/form-data; boundary=\"----WebKitFormBoundary7MA4YWxkTrZu0gW\"";
      break;
    default: {
      size_t nl = body.find('\n');
      if (nl == std::string_view::npos) nl = body.size();
      content_type = std::string(body.substr(0, nl));
      body.remove_prefix(nl < body.size() ? nl + 1 : nl);
    }
  }
  Arguments args;
  Files files;
  HTTPHeaders headers;
  if (mode & 0x80) headers.add("Content-Encoding", "gzip");
  ParseResult<void> r = parse_body_arguments(content_type, body, args, files, (mode & 0x80) ? &headers : nullptr);
  if (!r) {
    FUZZ_CHECK(args.empty() && files.empty());
    FUZZ_CHECK(r.error().status == 400 || r.error().status == 415);
  } else {
    FUZZ_CHECK(size_of(args, files) <= body.size());
    Arguments args2;
    Files files2;
    FUZZ_CHECK(parse_body_arguments(content_type, body, args2, files2, (mode & 0x80) ? &headers : nullptr).ok());
    FUZZ_CHECK(args2.size() == args.size() && files2.size() == files.size());
  }
  // The multipart parser directly, with the boundary from the fuzzer's first line.
  if ((mode % 4) == 3) {
    HeaderParams params = parse_header_params(content_type);
    std::optional<std::string_view> boundary = params.param("boundary");
    if (boundary) {
      Arguments a;
      Files f;
      ParseResult<void> m = parse_multipart_form_data(*boundary, body, a, f);
      if (m) FUZZ_CHECK(size_of(a, f) <= body.size());
      else FUZZ_CHECK(a.empty() && f.empty());
    }
  }
  return 0;
}
