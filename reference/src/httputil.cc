#include "squall/httputil.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>

#include "squall/detail/hot_path.h"
#include "squall/ioloop.h"

namespace squall {

namespace {

// ---- small byte helpers ---------------------------------------------------------------

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool is_py_space(char c) noexcept {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

void append_latin1_as_utf8(std::string& out, std::string_view latin1) {
  for (char c : latin1) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out.push_back(c);
    } else {
      out.push_back(static_cast<char>(0xC0 | (byte >> 6)));
      out.push_back(static_cast<char>(0x80 | (byte & 0x3F)));
    }
  }
}

// ---- header parameters (email.utils semantics) ------------------------------------------

// Splits on ';' outside double-quoted strings. As in Python's cgi-derived
// _parseparam, a quote preceded by a backslash never opens or closes a string.
std::vector<std::string_view> split_params(std::string_view s) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"' && (i == 0 || s[i - 1] != '\\')) {
      quoted = !quoted;
    } else if (s[i] == ';' && !quoted) {
      pieces.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  pieces.push_back(s.substr(start));
  return pieces;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// email.utils.unquote: strips one pair of double quotes (then turns \\ into \ and \"
// into ", in that order) or one pair of angle brackets.
std::string email_unquote(std::string_view v) {
  if (v.size() > 1 && v.front() == '"' && v.back() == '"') {
    std::string inner(v.substr(1, v.size() - 2));
    return replace_all(replace_all(std::move(inner), "\\\\", "\\"), "\\\"", "\"");
  }
  if (v.size() > 1 && v.front() == '<' && v.back() == '>') {
    return std::string(v.substr(1, v.size() - 2));
  }
  return std::string(v);
}

void set_param(HeaderParams& out, std::string name, std::string value) {
  for (auto& [existing, old_value] : out.params) {
    if (existing == name) {
      old_value = std::move(value);
      return;
    }
  }
  out.params.emplace_back(std::move(name), std::move(value));
}

// One piece of an RFC 2231 parameter: "name*", "name*0", "name*1*".
struct ExtendedPiece {
  std::string name;
  int number = -1;
  bool encoded = false;
  std::string value;
};

// Recognises `\w+ "*" [ 1*DIGIT [ "*" ] ]` (email.utils' rfc2231_continuation).
std::optional<ExtendedPiece> extended_piece(std::string_view name) {
  const std::size_t star = name.find('*');
  if (star == 0 || star == std::string_view::npos) return std::nullopt;
  for (char c : name.substr(0, star)) {
    if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) {
      return std::nullopt;
    }
  }
  ExtendedPiece piece;
  piece.name = std::string(name.substr(0, star));
  std::string_view rest = name.substr(star + 1);
  if (rest.empty()) {
    piece.encoded = true;
    return piece;
  }
  if (rest.back() == '*') {
    piece.encoded = true;
    rest.remove_suffix(1);
  }
  if (rest.empty() || rest.size() > 4) return std::nullopt;
  piece.number = 0;
  for (char c : rest) {
    if (!is_digit(c)) return std::nullopt;
    piece.number = piece.number * 10 + (c - '0');
  }
  return piece;
}

// Joins the pieces of one extended parameter and decodes "charset'lang'text" to UTF-8.
std::string decode_extended(std::vector<ExtendedPiece>& pieces) {
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const ExtendedPiece& a, const ExtendedPiece& b) { return a.number < b.number; });
  std::string joined;
  bool encoded = false;
  for (const ExtendedPiece& p : pieces) {
    joined += p.encoded ? url_unquote(p.value) : p.value;
    encoded = encoded || p.encoded;
  }
  if (!encoded) return joined;
  const std::size_t tick1 = joined.find('\'');
  const std::size_t tick2 = tick1 == std::string::npos ? tick1 : joined.find('\'', tick1 + 1);
  if (tick2 == std::string::npos) return joined;
  const std::string charset = lowered(std::string_view(joined).substr(0, tick1));
  const std::string_view text = std::string_view(joined).substr(tick2 + 1);
  if (charset == "iso-8859-1" || charset == "latin-1" || charset == "latin1") {
    std::string utf8;
    append_latin1_as_utf8(utf8, text);
    return utf8;
  }
  return std::string(text);  // UTF-8, ASCII, or unknown: the bytes as sent
}

// ---- multipart ----------------------------------------------------------------------

constexpr std::size_t kMaxBoundary = 70;  // RFC 2046 §5.1.1

// Where the next delimiter ("\r\n--boundary" followed by "--" or padding and CRLF)
// starts at or after `from`, or npos. Lookalikes such as "--boundaryX" are skipped.
std::size_t find_delimiter(std::string_view body, std::string_view dash_boundary, std::size_t from) {
  for (;;) {
    const std::size_t crlf = body.find("\r\n", from);
    if (crlf == std::string_view::npos) return crlf;
    const std::size_t after = crlf + 2 + dash_boundary.size();
    if (body.substr(crlf + 2, dash_boundary.size()) == dash_boundary) {
      if (body.substr(after, 2) == "--") return crlf;
      std::size_t p = after;
      while (p < body.size() && (body[p] == ' ' || body[p] == '\t')) ++p;
      if (body.substr(p, 2) == "\r\n") return crlf;
    }
    from = crlf + 1;
  }
}

// One body part (without the CRLF of the delimiter that ends it). `with_crlf` also
// holds that CRLF, which ends the header section when the part's body is empty.
ParseResult<void> parse_part(std::string_view part, std::string_view with_crlf, Arguments& arguments,
                             Files& files) {
  const std::size_t eoh = with_crlf.find("\r\n\r\n");
  if (eoh == std::string_view::npos) return ParseError{400, "multipart part missing headers"};
  HeadLimits limits;
  limits.unfold_obs_fold = true;
  auto headers = parse_headers(with_crlf.substr(0, eoh), limits);
  if (!headers) return ParseError{400, "invalid multipart part headers"};
  const HeaderParams disposition = parse_header_params(headers->get("Content-Disposition", ""));
  if (!header_name_equals(disposition.value, "form-data")) {
    return ParseError{400, "invalid multipart Content-Disposition"};
  }
  const auto name = disposition.param("name");
  if (!name || name->empty()) return ParseError{400, "multipart part missing name"};
  const std::string_view value = eoh + 4 <= part.size() ? part.substr(eoh + 4) : std::string_view();
  const auto filename = disposition.param("filename");
  if (filename && !filename->empty()) {
    files.add(*name, HTTPFile{std::string(*filename),
                              headers->get("Content-Type", "application/unknown"), std::string(value)});
  } else {
    arguments.add(*name, std::string(value));
  }
  return {};
}

// ---- cookies ------------------------------------------------------------------------

bool is_octal(char c) noexcept { return c >= '0' && c <= '7'; }

// http.cookies._unquote: a double-quoted value loses its quotes, "\ooo" becomes that
// byte and "\c" becomes c.
std::string unquote_cookie(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  const std::string_view inner = v.substr(1, v.size() - 2);
  std::string out;
  out.reserve(inner.size());
  for (std::size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] != '\\' || i + 1 >= inner.size()) {
      out.push_back(inner[i]);
    } else if (i + 3 < inner.size() && inner[i + 1] >= '0' && inner[i + 1] <= '3' &&
               is_octal(inner[i + 2]) && is_octal(inner[i + 3])) {
      out.push_back(static_cast<char>((inner[i + 1] - '0') * 64 + (inner[i + 2] - '0') * 8 +
                                      (inner[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(inner[++i]);
    }
  }
  return out;
}

// ---- dates --------------------------------------------------------------------------

constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDayNames = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, int m, int d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<std::int64_t>(y - era * 400);
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  std::int64_t year;
  int month;
  int day;
};

Civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const auto day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const auto month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2), month, day};
}

bool is_leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(std::int64_t y, int m) noexcept {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[static_cast<std::size_t>(m - 1)];
}

// Reads fixed-layout date text left to right; any mismatch makes ok() false.
class DateReader {
 public:
  explicit DateReader(std::string_view s) : s_(s) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return ok_ && pos_ == s_.size(); }
  char peek() const noexcept { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
    } else {
      ok_ = false;
    }
  }
  int digits(std::size_t n) {
    int v = 0;
    for (std::size_t i = 0; i < n; ++i, ++pos_) {
      if (pos_ >= s_.size() || !is_digit(s_[pos_])) {
        ok_ = false;
        return 0;
      }
      v = v * 10 + (s_[pos_] - '0');
    }
    return v;
  }
  template <std::size_t N>
  int one_of(const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i) {
      if (s_.substr(pos_, names[i].size()) == names[i]) {
        pos_ += names[i].size();
        return static_cast<int>(i);
      }
    }
    ok_ = false;
    return 0;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

struct DateFields {
  std::int64_t year = 0;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
};

void read_time_of_day(DateReader& r, DateFields& f) {
  f.hour = r.digits(2);
  r.literal(":");
  f.minute = r.digits(2);
  r.literal(":");
  f.second = r.digits(2);
}

std::optional<std::time_t> to_time(const DateFields& f) {
  if (f.month < 1 || f.month > 12 || f.day < 1 || f.day > days_in_month(f.year, f.month) ||
      f.hour > 23 || f.minute > 59 || f.second > 60) {
    return std::nullopt;
  }
  const std::int64_t days = days_from_civil(f.year, f.month, f.day);
  return static_cast<std::time_t>(days * 86400 + f.hour * 3600 + f.minute * 60 + f.second);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<DateFields> read_imf_fixdate(std::string_view s) {
  DateReader r(s);
  DateFields f;
  r.one_of(kDayNames);
  r.literal(", ");
  f.day = r.digits(2);
  r.literal(" ");
  f.month = r.one_of(kMonthNames) + 1;
  r.literal(" ");
  f.year = r.digits(4);
  r.literal(" ");
  read_time_of_day(r, f);
  r.literal(" GMT");
  return r.at_end() ? std::optional(f) : std::nullopt;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<DateFields> read_rfc850_date(std::string_view s, std::time_t now) {
  DateReader r(s);
  DateFields f;
  r.one_of(kLongDayNames);
  r.literal(", ");
  f.day = r.digits(2);
  r.literal("-");
  f.month = r.one_of(kMonthNames) + 1;
  r.literal("-");
  const int yy = r.digits(2);
  r.literal(" ");
  read_time_of_day(r, f);
  r.literal(" GMT");
  if (!r.at_end()) return std::nullopt;
  const std::int64_t this_year = civil_from_days(static_cast<std::int64_t>(now) / 86400).year;
  f.year = this_year - this_year % 100 + yy;
  if (f.year > this_year + 50) f.year -= 100;
  return f;
}

// "Sun Nov  6 08:49:37 1994"
std::optional<DateFields> read_asctime_date(std::string_view s) {
  DateReader r(s);
  DateFields f;
  r.one_of(kDayNames);
  r.literal(" ");
  f.month = r.one_of(kMonthNames) + 1;
  r.literal(" ");
  if (r.peek() == ' ') {
    r.literal(" ");
    f.day = r.digits(1);
  } else {
    f.day = r.digits(2);
  }
  r.literal(" ");
  read_time_of_day(r, f);
  r.literal(" ");
  f.year = r.digits(4);
  return r.at_end() ? std::optional(f) : std::nullopt;
}

struct Reason {
  int code;
  std::string_view phrase;
};

// Python's http.client.responses, which Tornado sends.
constexpr Reason kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a Teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

}  // namespace

std::string_view strip_python_whitespace(std::string_view s) noexcept {
  while (!s.empty() && is_py_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_py_space(s.back())) s.remove_suffix(1);
  return s;
}

// ---- URLs and query strings -------------------------------------------------------------

std::string url_unquote(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void parse_query_into(std::string_view query, Arguments& out, bool keep_blank_values) {
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (value.empty() && !keep_blank_values) continue;
    out.add(url_unquote(name, /*plus_is_space=*/true), url_unquote(value, /*plus_is_space=*/true));
  }
}

Arguments parse_query(std::string_view query, bool keep_blank_values) {
  Arguments out;
  parse_query_into(query, out, keep_blank_values);
  return out;
}

std::pair<std::string_view, std::optional<std::uint16_t>> split_host_and_port(std::string_view netloc) {
  // From the end: 1 to 5 digits, then the last ':' (any other byte there means the part
  // after the last ':' is not all digits), which must not be the first byte.
  std::size_t colon = netloc.size();
  while (colon > 0 && netloc.size() - colon < 6 && is_digit(netloc[colon - 1])) --colon;
  const std::size_t digits = netloc.size() - colon;
  if (digits == 0 || digits > 5 || colon < 2 || netloc[colon - 1] != ':') return {netloc, std::nullopt};
  std::uint32_t port = 0;
  for (char c : netloc.substr(colon)) port = port * 10 + static_cast<std::uint32_t>(c - '0');
  --colon;
  if (port > 65535) return {netloc, std::nullopt};
  return {netloc.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// ---- header parameters, forms and multipart ---------------------------------------------

std::optional<std::string_view> HeaderParams::param(std::string_view name) const {
  for (const auto& [key, param_value] : params) {
    if (header_name_equals(key, name)) return std::string_view(param_value);
  }
  return std::nullopt;
}

HeaderParams parse_header_params(std::string_view header_value) {
  const std::vector<std::string_view> pieces = split_params(header_value);
  HeaderParams out;
  out.value = std::string(strip_python_whitespace(pieces.front()));
  std::vector<std::vector<ExtendedPiece>> extended;
  for (std::size_t i = 1; i < pieces.size(); ++i) {
    const std::string_view piece = strip_python_whitespace(pieces[i]);
    const std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lowered(strip_python_whitespace(piece.substr(0, eq)));
    std::string value = email_unquote(strip_python_whitespace(piece.substr(eq + 1)));
    if (auto ext = extended_piece(name)) {
      ext->value = std::move(value);
      auto group = std::find_if(extended.begin(), extended.end(),
                                [&](const auto& g) { return g.front().name == ext->name; });
      if (group == extended.end()) {
        extended.emplace_back().push_back(std::move(*ext));
      } else {
        group->push_back(std::move(*ext));
      }
      continue;
    }
    set_param(out, std::move(name), std::move(value));
  }
  for (auto& group : extended) set_param(out, group.front().name, decode_extended(group));
  // _parse_header strips one more pair of quotes left after email.utils' unquoting.
  for (auto& [name, value] : out.params) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
  }
  return out;
}

ParseResult<void> parse_body_arguments(std::string_view content_type, std::string_view body,
                                       Arguments& arguments, Files& files, const HTTPHeaders* headers) {
  const HeaderParams type = parse_header_params(content_type);
  const bool urlencoded = header_name_equals(type.value, "application/x-www-form-urlencoded");
  const bool multipart = header_name_equals(type.value, "multipart/form-data");
  if (!urlencoded && !multipart) return {};
  if (headers != nullptr && headers->contains("Content-Encoding")) {
    return ParseError{415, "unsupported Content-Encoding for a form body"};
  }
  if (urlencoded) {
    parse_query_into(body, arguments, /*keep_blank_values=*/true);
    return {};
  }
  const auto boundary = type.param("boundary");
  if (!boundary || boundary->empty()) return ParseError{400, "multipart boundary not found"};
  return parse_multipart_form_data(*boundary, body, arguments, files);
}

ParseResult<void> parse_multipart_form_data(std::string_view boundary, std::string_view body,
                                            Arguments& arguments, Files& files) {
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  if (boundary.empty() || boundary.size() > kMaxBoundary) {
    return ParseError{400, "invalid multipart boundary"};
  }
  const std::string dash_boundary = "--" + std::string(boundary);
  // The first delimiter may open the body; otherwise it follows a preamble and CRLF.
  std::size_t delimiter = 0;
  if (body.substr(0, dash_boundary.size()) != dash_boundary) {
    delimiter = find_delimiter(body, dash_boundary, 0);
    if (delimiter == std::string_view::npos) return ParseError{400, "multipart boundary missing"};
    delimiter += 2;
  }
  Arguments new_arguments;
  Files new_files;
  for (;;) {
    std::size_t pos = delimiter + dash_boundary.size();
    if (body.substr(pos, 2) == "--") break;  // close delimiter; the epilogue is ignored
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return ParseError{400, "no final multipart boundary"};
    const std::size_t part_start = pos + 2;
    if (body.substr(part_start, dash_boundary.size()) == dash_boundary) {
      delimiter = part_start;  // an empty part, skipped as Tornado does
      continue;
    }
    const std::size_t next = find_delimiter(body, dash_boundary, part_start);
    if (next == std::string_view::npos) return ParseError{400, "no final multipart boundary"};
    const std::string_view part = body.substr(part_start, next - part_start);
    const std::string_view with_crlf = body.substr(part_start, next + 2 - part_start);
    auto parsed = parse_part(part, with_crlf, new_arguments, new_files);
    if (!parsed) return parsed;
    delimiter = next + 2;
  }
  arguments.merge(std::move(new_arguments));
  files.merge(std::move(new_files));
  return {};
}

// ---- cookies ------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> parse_cookie(std::string_view header) {
  std::vector<std::pair<std::string, std::string>> cookies;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    const std::string_view chunk = header.substr(pos, semi - pos);
    pos = semi + 1;
    const std::size_t eq = chunk.find('=');
    const bool has_eq = eq != std::string_view::npos;
    const std::string_view key = strip_python_whitespace(has_eq ? chunk.substr(0, eq) : std::string_view());
    const std::string_view value = strip_python_whitespace(has_eq ? chunk.substr(eq + 1) : chunk);
    if (key.empty() && value.empty()) continue;
    std::string unquoted = unquote_cookie(value);
    auto existing = std::find_if(cookies.begin(), cookies.end(), [&](const auto& c) { return c.first == key; });
    if (existing != cookies.end()) {
      existing->second = std::move(unquoted);
    } else {
      cookies.emplace_back(std::string(key), std::move(unquoted));
    }
  }
  return cookies;
}

bool is_legal_cookie_name(std::string_view name) {
  static constexpr std::string_view kReserved[] = {"expires", "path",     "comment", "domain",  "max-age",
                                                   "secure",  "httponly", "version", "samesite"};
  if (name.empty()) return false;
  for (char c : name) {
    const bool alnum = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~:").find(c) == std::string_view::npos) return false;
  }
  const std::string lower = lowered(name);
  return std::find(std::begin(kReserved), std::end(kReserved), lower) == std::end(kReserved);
}

// ---- dates --------------------------------------------------------------------------

std::string format_http_date(std::time_t t) {
  const auto seconds = static_cast<std::int64_t>(t);
  std::int64_t days = seconds / 86400;
  std::int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  const Civil date = civil_from_days(days);
  const std::int64_t weekday = ((days % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.3s, %02d %.3s %04lld %02d:%02d:%02d GMT",
                              kDayNames[static_cast<std::size_t>(weekday)].data(), date.day,
                              kMonthNames[static_cast<std::size_t>(date.month - 1)].data(),
                              static_cast<long long>(date.year), static_cast<int>(rem / 3600),
                              static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  return std::string(buf, static_cast<std::size_t>(n));
}

SQUALL_HOT
std::time_t current_second() {
  const IOLoop* loop = IOLoop::current_or_null();
  if (loop == nullptr) return std::time(nullptr);
  struct Offset {
    TimePoint read_at{};  // the monotonic time it was read at
    std::chrono::system_clock::duration wall_minus_monotonic{};
    bool known = false;
  };
  thread_local Offset offset;
  const TimePoint now = loop->cached_time();
  if (!offset.known || now - offset.read_at >= std::chrono::seconds(1) || now < offset.read_at) {
    // The wall clock may have been stepped since: read it again, with the monotonic clock
    // beside it (not against the iteration's time, which would put the second ahead by
    // however long the iteration has run).
    const auto wall = std::chrono::system_clock::now().time_since_epoch();
    const auto monotonic = Clock::now().time_since_epoch();
    offset.wall_minus_monotonic = wall - std::chrono::duration_cast<std::chrono::system_clock::duration>(monotonic);
    offset.read_at = now;
    offset.known = true;
  }
  const auto wall = std::chrono::duration_cast<std::chrono::system_clock::duration>(now.time_since_epoch()) +
                    offset.wall_minus_monotonic;
  return static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(wall).count());
}

const std::string& current_http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  std::time_t now = current_second();
  if (now != cached_second || cached.empty()) {
    cached_second = now;
    cached = format_http_date(now);
  }
  return cached;
}

std::optional<std::time_t> parse_http_date(std::string_view s, std::time_t now) {
  std::optional<DateFields> fields;
  if (s.size() > 3 && s[3] == ',') {
    fields = read_imf_fixdate(s);
  } else if (s.size() > 3 && s[3] == ' ') {
    fields = read_asctime_date(s);
  } else {
    fields = read_rfc850_date(s, now);
  }
  if (!fields) return std::nullopt;
  return to_time(*fields);
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  return parse_http_date(s, std::time(nullptr));
}

// ---- status codes -------------------------------------------------------------------

std::string_view reason_phrase(int code) noexcept {
  for (const Reason& r : kReasons) {
    if (r.code == code) return r.phrase;
  }
  return "Unknown";
}

// ---- base64 -------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
  // OpenSSL's encoder (the library links it anyway): 4 characters per 3 bytes, plus the
  // terminating NUL it writes.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    uint32_t group = 0;
    int padding = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      size_t value = 0;
      if (c == '=' && k >= 2 && last) {
        ++padding;
      } else if (padding != 0 || (value = kAlphabet.find(c)) == std::string_view::npos) {
        return std::nullopt;  // a character after '=', or not of the alphabet
      }
      group = (group << 6) | static_cast<uint32_t>(value);
    }
    out.push_back(static_cast<char>(group >> 16));
    if (padding < 2) out.push_back(static_cast<char>((group >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(group & 0xff));
  }
  return out;
}

}  // namespace squall
