// httputil: what an HTTP request means above its framing (Tornado's `httputil`).
//
// What it is for: turning the bytes a connection delivered into what a handler wants:
// percent-decoded query arguments, form fields and uploaded files (urlencoded and
// multipart bodies), `Content-Type`-style parameters, cookies, HTTP dates, and the
// standard reason phrases. `HTTPHeaders` (http_headers.h) and the framing parsers
// (http_parse.h) are re-exported, so including this header gives the whole Tornado
// module.
//
// Why it looks like this: every function is a pure function over bytes that follows
// Python's behaviour as Tornado relies on it (urllib.parse for queries, email.utils
// for header parameters, http.cookies for cookie values), so Squall and Tornado agree
// on what a request means. Strings are byte strings (`std::string`), never decoded:
// like Tornado's `bytes` arguments, charset decoding is the caller's business. Bad
// bodies give a ParseError (status + reason), never an exception or a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "squall/http_headers.h"
#include "squall/http_parse.h"

namespace squall {

// An ordered multi-map: name (exact bytes) -> list of values, names in order of first
// appearance (Tornado's Dict[str, List[...]] for arguments and files). Lookups are
// linear while small and hashed once it grows, so hostile inputs stay linear.
template <class V>
class MultiDict {
 public:
  struct Entry {
    std::string name;
    std::vector<V> values;
  };

  void add(std::string_view name, V value) {
    if (std::vector<V>* values = find(name)) {
      values->push_back(std::move(value));
      return;
    }
    entries_.push_back(Entry{std::string(name), {}});
    entries_.back().values.push_back(std::move(value));
    if (index_) {
      index_->emplace(entries_.back().name, entries_.size() - 1);
    } else if (entries_.size() > kIndexAfter) {
      index_.emplace();
      for (std::size_t i = 0; i < entries_.size(); ++i) index_->emplace(entries_[i].name, i);
    }
  }

  // All values of `name`, or nullptr.
  const std::vector<V>* find(std::string_view name) const {
    if (index_) {
      auto it = index_->find(name);
      return it == index_->end() ? nullptr : &entries_[it->second].values;
    }
    for (const Entry& e : entries_) {
      if (e.name == name) return &e.values;
    }
    return nullptr;
  }
  std::vector<V>* find(std::string_view name) {
    return const_cast<std::vector<V>*>(std::as_const(*this).find(name));
  }

  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // All values of `name` (empty if absent).
  std::vector<V> get_list(std::string_view name) const {
    const std::vector<V>* values = find(name);
    return values ? *values : std::vector<V>{};
  }
  // Number of distinct names.
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  auto begin() const noexcept { return entries_.begin(); }
  auto end() const noexcept { return entries_.end(); }

  // Appends every value of `other` (Tornado's `arguments.setdefault(k, []).extend(v)`).
  void merge(MultiDict&& other) {
    for (Entry& e : other.entries_) {
      for (V& v : e.values) add(e.name, std::move(v));
    }
    other = MultiDict{};
  }

 private:
  static constexpr std::size_t kIndexAfter = 16;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::vector<Entry> entries_;
  // Made only once there are more than kIndexAfter names: a request carries four of
  // these, mostly empty, and an empty map still costs a constructor and a destructor.
  std::optional<std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>>> index_;
};

// An uploaded file (Tornado's HTTPFile).
struct HTTPFile {
  std::string filename;
  std::string content_type;
  std::string body;
  friend bool operator==(const HTTPFile&, const HTTPFile&) = default;
};

using Arguments = MultiDict<std::string>;
using Files = MultiDict<HTTPFile>;

// `s` without Python's str.strip() whitespace at either end, restricted to ASCII (SP,
// HTAB, LF, VT, FF, CR and 0x1C-0x1F; values here are bytes, so the Latin-1 spaces 0x85
// and 0xA0, which may be UTF-8 continuation bytes, are kept): what Tornado strips from
// header parameters, cookies and arguments. For HTTP's own OWS see trim_ows (http_parse.h).
std::string_view strip_python_whitespace(std::string_view s) noexcept;

// ---- URLs and query strings -------------------------------------------------------------

// Percent-decoding as Python's urllib.parse.unquote_to_bytes: "%XX" (either case) becomes
// the byte, anything else (a lone or invalid "%") is kept as is; with `plus_is_space`
// (query strings, form bodies) '+' becomes ' ' first.
std::string url_unquote(std::string_view s, bool plus_is_space = false);

// Python's parse_qsl on '&'-separated "name=value" pairs, both url_unquote'd with '+' as
// space. A pair without '=' has an empty value. Blank values are kept unless
// keep_blank_values is false (Tornado keeps them). Empty pairs ("a=1&&b=2") are skipped.
void parse_query_into(std::string_view query, Arguments& out, bool keep_blank_values = true);
Arguments parse_query(std::string_view query, bool keep_blank_values = true);

// "host:port" -> ("host", port); no port (or not 1-5 digits <= 65535) -> (netloc, none).
std::pair<std::string_view, std::optional<std::uint16_t>> split_host_and_port(
    std::string_view netloc);

// ---- header parameters, forms and multipart ---------------------------------------------

// A Content-Type / Content-Disposition style value: "text/html; charset=utf-8".
struct HeaderParams {
  std::string value;  // the part before the first ';', OWS-trimmed, case kept
  std::vector<std::pair<std::string, std::string>> params;  // names lower-cased, unique
  // The parameter's value, or nullopt (names are compared case-insensitively).
  std::optional<std::string_view> param(std::string_view name) const;
};

// Tornado's `_parse_header`: splits on ';' outside quoted strings; parameters without
// '=' are dropped; quoted values are unquoted (\" and \\ only, as email.utils does);
// RFC 2231/5987 extended values (`filename*=utf-8''na%C3%AFve`, continuations
// `name*0`, `name*1*`) are decoded to UTF-8 bytes and override the plain parameter.
HeaderParams parse_header_params(std::string_view header_value);

// Parses a form body into `arguments` and `files` (appending; on error nothing is
// added): application/x-www-form-urlencoded and multipart/form-data, matched
// case-insensitively; any other content type is ignored. With a Content-Encoding in
// `headers` the body is refused (415). Other failures are 400.
ParseResult<void> parse_body_arguments(std::string_view content_type, std::string_view body,
                                       Arguments& arguments, Files& files,
                                       const HTTPHeaders* headers = nullptr);

// A multipart/form-data body with the given boundary (quotes already removed or not).
// Parts need `Content-Disposition: form-data; name=...`; a part with a non-empty
// filename is a file (Content-Type defaulting to application/unknown), else a field.
// A preamble and epilogue are ignored; a missing close delimiter is an error.
ParseResult<void> parse_multipart_form_data(std::string_view boundary, std::string_view body,
                                            Arguments& arguments, Files& files);

// ---- base64 -------------------------------------------------------------------------

// Standard base64 (RFC 4648 §4, padded, no line breaks): Basic credentials
// (RFC 7617), bodies carried in JSON by the client adapter, serialized histograms.
std::string base64_encode(std::string_view bytes);
// The bytes, or nullopt unless `text` is padded base64: a multiple of 4
// characters of the standard alphabet, '=' only as the last one or two.
std::optional<std::string> base64_decode(std::string_view text);

// ---- cookies ------------------------------------------------------------------------

// Tornado's parse_cookie (browser-like, not RFC 6265): split on ';', then on the first
// '='; a chunk without '=' is a value with an empty name; name and value are stripped
// of ASCII whitespace; pairs with empty name and value are dropped; a double-quoted
// value is unquoted (\" and \ooo octal escapes). Later duplicates replace the value
// and keep the first position, as a Python dict does.
std::vector<std::pair<std::string, std::string>> parse_cookie(std::string_view header);

// Whether http.cookies.SimpleCookie accepts the name (Tornado's RequestHandler.cookies
// silently drops the others): non-empty, only letters, digits and !#$%&'*+-.^_`|~:
// and not a reserved attribute name (expires, path, domain, ...).
bool is_legal_cookie_name(std::string_view name);

// ---- dates --------------------------------------------------------------------------

// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::time_t t);
// The wall clock's second. Inside a running loop it is the loop iteration's time
// (IOLoop::cached_time) plus the wall clock's offset from the monotonic clock, and that
// offset is read again at most once a second. This is how nginx caches its time per
// event-loop iteration. A Date header may then lag the clock by the iteration's length.
// Every response asks for it. On the machines measured, a clock read cost 20 to 60 ns
// (load/performance.md, session 14).
std::time_t current_second();
// format_http_date(current_second()), formatted at most once per second per thread (the
// Date header of every response: formatting it per request showed in profiles).
const std::string& current_http_date();

// Any of the three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7):
// IMF-fixdate, obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years
// more than 50 years after `now` are taken from the previous century) and asctime
// ("Sun Nov  6 08:49:37 1994"). Case-sensitive, no surrounding whitespace.
std::optional<std::time_t> parse_http_date(std::string_view s);
std::optional<std::time_t> parse_http_date(std::string_view s, std::time_t now);

// ---- status codes -------------------------------------------------------------------

// The reason phrase Tornado sends for `code` (Python's http.client.responses), or
// "Unknown".
std::string_view reason_phrase(int code) noexcept;

}  // namespace squall
