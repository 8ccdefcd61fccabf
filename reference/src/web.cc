#include "squall/web.h"

#include <re2/re2.h>
#include <zlib.h>

// The hash functions compiled in here (libxxhash-dev's header-only mode): nothing to link.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

#include "squall/detail/hot_path.h"
#include "squall/http1connection.h"
#include "squall/log.h"

namespace squall {

// ---- errors -----------------------------------------------------------------------------

HTTPError::HTTPError(int status_code, std::string log_message, std::string reason)
    : std::runtime_error("HTTP " + std::to_string(status_code) + ": " +
                         (reason.empty() ? std::string(reason_phrase(status_code)) : reason) +
                         (log_message.empty() ? "" : " (" + log_message + ")")),
      status_code_(status_code),
      log_message_(std::move(log_message)),
      reason_(std::move(reason)) {}

MissingArgumentError::MissingArgumentError(std::string arg_name)
    : HTTPError(400, "Missing argument " + arg_name), arg_name_(std::move(arg_name)) {}

namespace {

// The client went away; unwinds a handler waiting for its body without an error log.
struct ConnectionGone : std::runtime_error {
  ConnectionGone() : std::runtime_error("connection closed") {}
};

}  // namespace

// ---- Json -------------------------------------------------------------------------------

void Json::push_back(Json item) {
  auto* a = std::get_if<Array>(&value_);
  if (!a) throw std::logic_error("Json::push_back on a non-array");
  a->push_back(std::move(item));
}

void Json::set(std::string key, Json item) {
  auto* o = std::get_if<Object>(&value_);
  if (!o) throw std::logic_error("Json::set on a non-object");
  for (auto& member : *o) {
    if (member.first == key) {
      member.second = std::move(item);
      return;
    }
  }
  o->emplace_back(std::move(key), std::move(item));
}

namespace {

void append_u_escape(std::string& out, uint32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(unit >> shift) & 15]);
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i, or
// returns nullopt (and advances by one byte) for an invalid sequence.
std::optional<uint32_t> decode_utf8(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return std::nullopt;
  }
  uint32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and out-of-range values are invalid.
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return std::nullopt;
  }
  i += static_cast<size_t>(len);
  return cp;
}

void quote_into(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::optional<uint32_t> cp = decode_utf8(s, i);
      uint32_t v = cp.value_or(0xFFFD);
      if (v >= 0x10000) {
        v -= 0x10000;
        append_u_escape(out, 0xD800 + (v >> 10));
        append_u_escape(out, 0xDC00 + (v & 0x3FF));
      } else {
        append_u_escape(out, v);
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '/':
        // "</" -> "<\/" (Tornado's json_encode), so JSON can be embedded in HTML.
        if (i >= 2 && s[i - 2] == '<') {
          out += "\\/";
        } else {
          out.push_back('/');
        }
        break;
      default:
        if (c < 0x20) {
          append_u_escape(out, c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out;
  quote_into(out, s);
  return out;
}

void Json::dump_to(std::string& out) const {
  std::visit(
      [&out](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::nullptr_t>) {
          out += "null";
        } else if constexpr (std::is_same_v<V, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, int64_t>) {
          out += std::to_string(v);
        } else if constexpr (std::is_same_v<V, double>) {
          if (!std::isfinite(v)) {
            out += "null";  // JSON has no NaN or Infinity
          } else {
            std::string text = fmt::format("{}", v);
            if (text.find_first_of(".eE") == std::string::npos) text += ".0";
            out += text;
          }
        } else if constexpr (std::is_same_v<V, std::string>) {
          quote_into(out, v);
        } else if constexpr (std::is_same_v<V, Array>) {
          out.push_back('[');
          for (size_t i = 0; i < v.size(); ++i) {
            if (i) out.push_back(',');
            v[i].dump_to(out);
          }
          out.push_back(']');
        } else {
          out.push_back('{');
          for (size_t i = 0; i < v.size(); ++i) {
            if (i) out.push_back(',');
            quote_into(out, v[i].first);
            out.push_back(':');
            v[i].second.dump_to(out);
          }
          out.push_back('}');
        }
      },
      value_);
}

std::string Json::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

// ---- gzip output transform (Tornado's GZipContentEncoding) --------------------------------

namespace detail {

struct GzipState {
  static constexpr size_t kMinLength = 1024;
  z_stream zs{};
  bool gzipping = false;  // the client accepts gzip (then: this response is compressed)
  bool initialized = false;

  ~GzipState() {
    if (initialized) deflateEnd(&zs);
  }

  // Whether an Accept-Encoding value (RFC 9110 §12.5.3) admits gzip: a "gzip" (or
  // "x-gzip") element with a q-value above 0, or else a "*" with one; "gzip;q=0" refuses.
  static bool accepts_gzip(std::string_view accept_encoding) {
    auto lower_equals = [](std::string_view a, std::string_view b) {
      return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == y;
             });
    };
    std::optional<bool> gzip;
    std::optional<bool> any;
    for_each_list_element(accept_encoding, [&](std::string_view element) {
      size_t semi = element.find(';');
      std::string_view coding = trim_ows(element.substr(0, semi));
      bool positive = true;  // q defaults to 1
      while (semi != std::string_view::npos) {
        size_t next = element.find(';', semi + 1);
        std::string_view param = trim_ows(element.substr(semi + 1, next == std::string_view::npos ? next : next - semi - 1));
        semi = next;
        size_t eq = param.find('=');
        if (eq == std::string_view::npos || !lower_equals(trim_ows(param.substr(0, eq)), "q")) continue;
        std::string_view q = trim_ows(param.substr(eq + 1));
        positive = std::any_of(q.begin(), q.end(), [](char c) { return c >= '1' && c <= '9'; });
      }
      if (lower_equals(coding, "gzip") || lower_equals(coding, "x-gzip")) {
        gzip = gzip.value_or(false) || positive;
      } else if (coding == "*") {
        any = any.value_or(false) || positive;
      }
      return true;
    });
    return gzip ? *gzip : any.value_or(false);
  }

  static bool compressible(std::string_view ctype) {
    static constexpr std::string_view kTypes[] = {
        "application/javascript", "application/x-javascript", "application/xml",
        "application/atom+xml",   "application/json",         "application/xhtml+xml",
        "image/svg+xml"};
    if (ctype.starts_with("text/")) return true;
    return std::find(std::begin(kTypes), std::end(kTypes), ctype) != std::end(kTypes);
  }

  // Compresses `chunk` in place (left as it is when not gzipping: no copy of the body).
  void transform_chunk(std::string& chunk, bool finishing) {
    if (!gzipping) return;
    std::string out;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
    zs.avail_in = static_cast<uInt>(chunk.size());
    int flush = finishing ? Z_FINISH : Z_SYNC_FLUSH;
    char buffer[16384];
    while (true) {
      zs.next_out = reinterpret_cast<Bytef*>(buffer);
      zs.avail_out = sizeof(buffer);
      int rc = deflate(&zs, flush);
      out.append(buffer, sizeof(buffer) - zs.avail_out);
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
      if (zs.avail_out != 0 && zs.avail_in == 0) break;  // all input consumed and flushed
    }
    chunk.swap(out);
  }

  // Every response of an application that compresses varies by Accept-Encoding.
  // `absent`: the caller has seen that no Vary line is set (finish()), so none is looked for.
  SQUALL_HOT static void add_vary(HTTPHeaders& headers, bool absent) {
    if (absent || !headers.contains("Vary")) {
      headers.add("Vary", "Accept-Encoding");  // the usual case: no rescan, no join
    } else {
      headers.set("Vary", *headers.get("Vary") + ", Accept-Encoding");
    }
  }

  // Decides on the first chunk; adjusts the headers.
  void transform_first_chunk(HTTPHeaders& headers, std::string& chunk, bool finishing, bool vary_absent) {
    add_vary(headers, vary_absent);
    if (gzipping) {
      std::string ctype = headers.get("Content-Type", "");
      std::string_view base = std::string_view(ctype).substr(0, ctype.find(';'));
      gzipping = compressible(base) && (!finishing || chunk.size() >= kMinLength) &&
                 !headers.contains("Content-Encoding");
    }
    if (!gzipping) return;
    headers.set("Content-Encoding", "gzip");
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("deflateInit2 failed");
    }
    initialized = true;
    transform_chunk(chunk, finishing);
    if (headers.contains("Content-Length")) {
      if (finishing) {
        headers.set("Content-Length", std::to_string(chunk.size()));
      } else {
        headers.remove("Content-Length");
      }
    }
  }
};

}  // namespace detail

// ---- RequestHandler -------------------------------------------------------------------------

SQUALL_HOT
RequestHandler::RequestHandler() = default;
SQUALL_HOT
RequestHandler::~RequestHandler() = default;

Task<void> RequestHandler::prepare() { co_return; }
Task<void> RequestHandler::get() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::head() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::post() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::delete_() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::patch() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::put() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::options() { throw HTTPError(405); co_return; }
Task<void> RequestHandler::data_received(std::string) { co_return; }

bool RequestHandler::supports_method(std::string_view method) const {
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"};
  return std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

std::vector<std::string> RequestHandler::allowed_methods() const {
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"};
  std::vector<std::string> out;
  for (unsigned i = 0; i < std::size(kMethods); ++i) {
    bool implemented = overridden_methods_ ? ((*overridden_methods_ >> i) & 1u) != 0 : kMethods[i] != request().method;
    if (implemented && supports_method(kMethods[i])) out.emplace_back(kMethods[i]);
  }
  return out;
}

void detail::PooledRequestDelete::operator()(HTTPServerRequest* request) const noexcept {
  request->~HTTPServerRequest();
  pool_deallocate(request, sizeof(HTTPServerRequest));
}

HTTPServerRequest& RequestHandler::unattached_request() const {
  if (!request_) request_ = detail::make_pooled_request();
  return *request_;
}

SQUALL_HOT
void RequestHandler::attach(Application& application, detail::PooledRequest made, MatchResult&& params) {
  application_ = &application;
  request_ = std::move(made);
  // Most rules have no groups: nothing to move (a move assignment frees the old vector).
  if (!params.path_args.empty()) path_args_ = std::move(params.path_args);
  if (!params.path_kwargs.empty()) path_kwargs_ = std::move(params.path_kwargs);
  if (application.settings().compress_response) {
    // The deflate state is made only for a client that accepts gzip; the others' answers
    // just get the Vary header.
    // One Accept-Encoding line (the usual case) is read in place; several are joined.
    const HTTPHeaders& in = request().headers;
    const std::size_t first = in.find("Accept-Encoding");
    std::optional<std::string_view> accept_encoding;
    std::string joined;
    if (first < in.size()) {
      accept_encoding = in[first].value;
      if (in.find("Accept-Encoding", first + 1) < in.size()) accept_encoding = joined = *in.get("Accept-Encoding");
    }
    if (accept_encoding && detail::GzipState::accepts_gzip(*accept_encoding)) {
      gzip_ = std::make_unique<detail::GzipState>();
      gzip_->gzipping = true;
    } else {
      vary_accept_encoding_ = true;
    }
  }
  clear();
}

std::string RequestHandler::path_kwarg(std::string_view name) const {
  for (const auto& [k, v] : path_kwargs_) {
    if (k == name) return v;
  }
  return {};
}

namespace {

// Whether s holds a byte below 0x20 or 0x7f (DEL). Eight bytes per step: the classic
// "has a byte below n" test on (w) and "has a zero byte" on (w ^ 0x7f..7f).
SQUALL_HOT
bool has_control_chars(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  auto word_has = [](const char* at) {
    uint64_t w;
    std::memcpy(&w, at, 8);
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
    const uint64_t del = w ^ (kOnes * 0x7f);
    const uint64_t is_del = (del - kOnes) & ~del & kHighs;
    return (below_space | is_del) != 0;
  };
  if (s.size() < 8) {
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) return true;
    }
    return false;
  }
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    if (word_has(s.data() + i)) return true;
  }
  // The last bytes (fewer than 8) as the word that ends the string: it overlaps bytes
  // checked above, which changes nothing, and costs one step instead of up to seven.
  return i < s.size() && word_has(s.data() + s.size() - 8);
}

// Whether s is exactly the literal: the length, then a comparison of that many bytes
// the compiler does inline (std::string_view's == calls compare() out of line here).
template <size_t N>
bool equals_literal(std::string_view s, const char (&literal)[N]) {
  return s.size() == N - 1 && std::memcmp(s.data(), literal, N - 1) == 0;
}

void check_header_value(std::string_view value) {
  if (has_control_chars(value)) throw std::invalid_argument("Unsafe header value");
}

SQUALL_HOT
void check_header(std::string_view name, std::string_view value) {
  // The name nearly every handler sets is compared instead of scanned (a dozen bytes in
  // two words, where is_token steps byte by byte): spelled exactly so, it is a token.
  if (!equals_literal(name, "Content-Type") && !is_token(name)) throw std::invalid_argument("Invalid header name");
  check_header_value(value);
}

}  // namespace

namespace {

// The buffer of a handler's output, kept when flush() is done with it for the next
// handler on this thread: a small body then costs no allocation.
struct HandlerOutput;
using SpareOutput = detail::SpareString<HandlerOutput, 64 * 1024>;

constexpr std::string_view kDefaultContentType = "text/html; charset=UTF-8";

// The lines every response starts with (Server, Content-Type, Date), made once per second
// per thread and copied from there: three checked insertions per response cost more. One
// head is kept for the default type and one for each of the first few other types asked
// for (their values were checked when they were set). A type beyond those gets nullptr:
// the caller copies the default type's head and sets its type, so that an application
// answering with many types never makes a head per response.
SQUALL_HOT const HTTPHeaders* default_head(const std::string& server, std::string_view content_type) {
  struct Made {
    std::string server;
    std::string content_type;
    std::time_t second = 0;  // when the Date line was made
    HTTPHeaders head;
  };
  constexpr std::size_t kOtherTypes = 4;  // an application's handlers answer with a few types
  thread_local std::array<Made, 1 + kOtherTypes> made;  // [0]: the default type's
  Made* entry = nullptr;
  bool other_server = false;  // the entry was made for another server name
  if (content_type == kDefaultContentType) {
    entry = &made[0];
    other_server = entry->server != server;
  } else {
    // Taken in order and never given back: the first empty one comes after every match.
    for (std::size_t i = 1; i < made.size() && entry == nullptr; ++i) {
      Made& m = made[i];
      if (m.head.empty() || (m.content_type == content_type && m.server == server)) entry = &m;
    }
    if (entry == nullptr) return nullptr;
  }
  // The second, not the date's text: a number compared instead of 29 bytes, and the
  // date is formatted (current_http_date) only when the second has changed.
  const std::time_t now = current_second();
  if (entry->head.empty() || entry->second != now || other_server) {
    check_header("Server", server);  // a setting: checked like a header the handler sets
    entry->head.clear();
    entry->head.add("Server", server);
    entry->head.add("Content-Type", content_type);
    entry->head.add("Date", current_http_date());
    entry->server = server;
    entry->content_type = content_type;
    entry->second = now;
  }
  return &entry->head;
}

// Room for a typical response head (Server, Content-Type, Date, Content-Length, Etag
// and a few of the handler's own) in two allocations instead of a doubling series.
constexpr std::size_t kHeadFields = 8, kHeadBytes = 256;

}  // namespace

SQUALL_HOT
void RequestHandler::clear() {
  headers_.clear();
  if (application_) {
    head_pending_ = true;  // Server, Content-Type and Date: copied in when needed
    std::memcpy(pending_content_type_, kDefaultContentType.data(), kDefaultContentType.size());
    pending_content_type_size_ = static_cast<std::uint8_t>(kDefaultContentType.size());
  } else {
    head_pending_ = false;
    headers_.reserve(kHeadFields, kHeadBytes);
    headers_.add("Content-Type", kDefaultContentType);
    headers_.add("Date", current_http_date());
  }
  if (application_) {
    for (const auto& [name, value] : application_->settings().default_headers) set_header(name, value);
  }
  set_default_headers();
  write_buffer_.clear();
  if (write_buffer_.capacity() < 64) write_buffer_ = SpareOutput::take();
  status_code_ = 200;
  if (!equals_literal(reason_, "OK")) reason_ = "OK";  // a fresh handler's is: no rewrite
}

// ---- arguments

std::vector<std::string> RequestHandler::clean_arguments(const std::vector<std::string>* values, bool strip) const {
  std::vector<std::string> out;
  if (!values) return out;
  out.reserve(values->size());
  for (const std::string& raw : *values) {
    std::string s = raw;
    for (char& c : s) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x08 || (u >= 0x0e && u <= 0x1f)) c = ' ';
    }
    if (strip) s = std::string(strip_python_whitespace(s));
    out.push_back(std::move(s));
  }
  return out;
}

namespace {
std::string last_or_throw(std::vector<std::string> values, std::string_view name) {
  if (values.empty()) throw MissingArgumentError(std::string(name));
  return std::move(values.back());
}
std::string last_or(std::vector<std::string> values, std::string_view default_value) {
  if (values.empty()) return std::string(default_value);
  return std::move(values.back());
}
}  // namespace

std::vector<std::string> RequestHandler::get_arguments(std::string_view name, bool strip) const {
  return clean_arguments(request().arguments.find(name), strip);
}
std::string RequestHandler::get_argument(std::string_view name) const {
  return last_or_throw(get_arguments(name, true), name);
}
std::string RequestHandler::get_argument(std::string_view name, std::string_view default_value) const {
  return last_or(get_arguments(name, true), default_value);
}
std::vector<std::string> RequestHandler::get_query_arguments(std::string_view name, bool strip) const {
  return clean_arguments(request().query_arguments.find(name), strip);
}
std::string RequestHandler::get_query_argument(std::string_view name) const {
  return last_or_throw(get_query_arguments(name, true), name);
}
std::string RequestHandler::get_query_argument(std::string_view name, std::string_view default_value) const {
  return last_or(get_query_arguments(name, true), default_value);
}
std::vector<std::string> RequestHandler::get_body_arguments(std::string_view name, bool strip) const {
  return clean_arguments(request().body_arguments.find(name), strip);
}
std::string RequestHandler::get_body_argument(std::string_view name) const {
  return last_or_throw(get_body_arguments(name, true), name);
}
std::string RequestHandler::get_body_argument(std::string_view name, std::string_view default_value) const {
  return last_or(get_body_arguments(name, true), default_value);
}

std::optional<std::string> RequestHandler::get_cookie(std::string_view name) const { return request().cookie(name); }
std::string RequestHandler::get_cookie(std::string_view name, std::string_view default_value) const {
  return request().cookie(name).value_or(std::string(default_value));
}

// ---- output

void RequestHandler::set_status(int status_code, std::string_view reason) {
  if (status_code < 100 || status_code > 999) throw std::invalid_argument("Invalid status code");
  if (has_control_chars(reason)) throw std::invalid_argument("Unsafe reason phrase");
  status_code_ = status_code;
  reason_ = reason.empty() ? std::string(reason_phrase(status_code)) : std::string(reason);
}

SQUALL_HOT
void RequestHandler::set_header(std::string_view name, std::string_view value) {
  check_header(name, value);
  if (head_pending_) {
    // The type nearly every handler sets, spelled so: only the pending line's value changes.
    if (equals_literal(name, "Content-Type") && value.size() <= kPendingContentTypeRoom) {
      if (!value.empty()) std::memcpy(pending_content_type_, value.data(), value.size());
      pending_content_type_size_ = static_cast<std::uint8_t>(value.size());
      return;
    }
    materialize_head();
  }
  headers_.set(name, value);
}

void RequestHandler::add_header(std::string_view name, std::string_view value) {
  check_header(name, value);
  materialize_head();
  headers_.add(name, value);
}

void RequestHandler::clear_header(std::string_view name) {
  materialize_head();
  headers_.remove(name);
}

SQUALL_HOT
void RequestHandler::materialize_head() const {
  if (!head_pending_) return;
  head_pending_ = false;
  const std::string_view content_type(pending_content_type_, pending_content_type_size_);
  const std::string& server = application_->settings().server_header;
  if (const HTTPHeaders* head = default_head(server, content_type)) {
    headers_.assign(*head, kHeadFields, kHeadBytes);
  } else {
    headers_.assign(*default_head(server, kDefaultContentType), kHeadFields, kHeadBytes);
    headers_.set("Content-Type", content_type);
  }
}

SQUALL_HOT
void RequestHandler::write(std::string_view chunk) {
  if (finished_) throw std::logic_error("Cannot write() after finish()");
  write_buffer_.append(chunk);
}

void RequestHandler::write(const Json& value) {
  if (finished_) throw std::logic_error("Cannot write() after finish()");
  set_header("Content-Type", "application/json; charset=UTF-8");
  value.dump_to(write_buffer_);
}

void RequestHandler::write_json(std::string_view serialized) {
  if (finished_) throw std::logic_error("Cannot write() after finish()");
  set_header("Content-Type", "application/json; charset=UTF-8");
  write_buffer_.append(serialized);
}

namespace {

// The start line of most responses, made once: building one costs two strings per response.
const ResponseStartLine& ok_start_line() {
  static const ResponseStartLine ok{"HTTP/1.1", 200, "OK"};
  return ok;
}

}  // namespace

Future<void> RequestHandler::flush() { return flush_output(false); }

SQUALL_HOT
Future<void> RequestHandler::flush_output(bool vary_absent, const FramingLines* framing) {
  std::string chunk = std::move(write_buffer_);
  write_buffer_.clear();
  // Whichever way this returns, the bytes have been written or copied by then.
  struct GiveBack {
    std::string& spent;
    ~GiveBack() { SpareOutput::give(std::move(spent)); }
  } give_back{chunk};
  HTTPConnection* conn = request().connection;
  const bool finishing = finished_;
  if (!headers_written_) {
    headers_written_ = true;
    materialize_head();
    if (gzip_) {
      gzip_->transform_first_chunk(headers_, chunk, finishing, vary_absent);
    } else if (vary_accept_encoding_) {
      detail::GzipState::add_vary(headers_, vary_absent);
    }
    if (equals_literal(request().method, "HEAD")) chunk.clear();
    for (const auto& cookie : new_cookies_) {
      check_header_value(cookie.second);  // the name is ours
      headers_.add("Set-Cookie", cookie.second);
    }
    // Every line was checked as it was set (set_header, add_header, the lines above) or
    // is the web layer's own: the connection need not scan them again.
    headers_.mark_fields_checked();
    if (framing && !(gzip_ && gzip_->gzipping)) headers_.note_framing(*framing);
    if (!conn) return make_ready_future();
    Future<void> f = status_code_ == 200 && equals_literal(reason_, "OK")
                         ? conn->write_headers(ok_start_line(), headers_, chunk)
                         : conn->write_headers(ResponseStartLine{"HTTP/1.1", status_code_, reason_}, headers_, chunk);
    f.mark_retrieved();
    return f;
  }
  if (gzip_) gzip_->transform_chunk(chunk, finishing);
  if (chunk.empty() || equals_literal(request().method, "HEAD") || !conn) return make_ready_future();
  Future<void> f = conn->write(chunk);
  f.mark_retrieved();
  return f;
}

namespace {

// Which of the lines finish() and flush() add unless the handler set them are set, and
// the others the connection's framing depends on (FramingLines): one pass over the
// response's lines instead of a search for each name.
struct LinesSet {
  bool etag = false;
  bool content_length = false;
  bool vary = false;
  bool date = false;
  bool server = false;
  bool transfer_encoding = false;
};

LinesSet lines_set(const HTTPHeaders& headers) {
  LinesSet set;
  for (HeaderField field : headers) {
    switch (field.name.size()) {
      case 4:
        set.etag = set.etag || header_name_is(field.name, "etag");
        set.vary = set.vary || header_name_is(field.name, "vary");
        set.date = set.date || header_name_is(field.name, "date");
        break;
      case 6:
        set.server = set.server || header_name_is(field.name, "server");
        break;
      case 14:
        set.content_length = set.content_length || header_name_is(field.name, "content-length");
        break;
      case 17:
        set.transfer_encoding = set.transfer_encoding || header_name_is(field.name, "transfer-encoding");
        break;
      default:
        break;
    }
  }
  return set;
}

}  // namespace

SQUALL_HOT
Future<void> RequestHandler::finish(std::string_view chunk) {
  if (finished_) throw std::logic_error("finish() called twice");
  if (!chunk.empty()) write(chunk);
  bool vary_absent = false;
  // What the framing lines say when finish() writes the head and knows all of it: not
  // when the handler set Content-Length itself (its text is the connection's to read).
  std::optional<FramingLines> framing;
  if (!headers_written_) {
    materialize_head();
    // The lines below change none of these (compute_etag() is const; a bodyless answer
    // loses only Content-* lines that are no framing lines).
    const LinesSet set = lines_set(headers_);
    vary_absent = !set.vary;
    if (!set.content_length) {
      framing.emplace();
      framing->transfer_encoding = set.transfer_encoding;
      framing->date = set.date;
      framing->server = set.server;
    }
    const std::string_view method = request().method;
    if (status_code_ == 200 && (equals_literal(method, "GET") || equals_literal(method, "HEAD")) && !set.etag) {
      store_etag_header(true);
      if (check_etag_header()) {
        write_buffer_.clear();
        set_status(304);
      }
    }
    if (status_code_ == 204 || status_code_ == 304 || (status_code_ >= 100 && status_code_ < 200)) {
      if (!write_buffer_.empty()) throw std::logic_error("Cannot send body with " + std::to_string(status_code_));
      for (std::string_view h : {"Content-Encoding", "Content-Language", "Content-Type"}) headers_.remove(h);
    } else if (!set.content_length) {
      char digits[24];  // std::to_chars: no std::string made for a number copied at once
      const char* end = std::to_chars(std::begin(digits), std::end(digits), write_buffer_.size()).ptr;
      headers_.add("Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
      framing->content_length = write_buffer_.size();
      framing->has_content_length = true;
    }
  }
  // finish() must not be re-entered from here on: mark it before writing the tail
  // (flush() reads finished_ to end the gzip stream).
  finished_ = true;
  Future<void> f = flush_output(vary_absent, framing ? &*framing : nullptr);
  if (HTTPConnection* conn = request().connection) {
    try {
      conn->finish();
    } catch (...) {
      log(LogLevel::error, LogCategory::general, "Failed to finish response to {}: {}", request_summary(),
          describe_current_exception());
    }
  }
  // No finish time is noted: request_time() reads the clock when asked, as Tornado 6.2's
  // does (its _finish_time is never set), and a clock read per response showed in
  // profiles (load/performance.md, session 14).
  if (application_) application_->log_request(*this);
  on_finish();
  return f;
}

void RequestHandler::redirect(std::string_view url, bool permanent, std::optional<int> status) {
  if (headers_written_) throw std::logic_error("Cannot redirect after headers have been written");
  int code = status.value_or(permanent ? 301 : 302);
  if (code < 300 || code > 399) throw std::invalid_argument("redirect status must be 3xx");
  set_status(code);
  set_header("Location", url);
  finish();
}

void RequestHandler::write_error(int status_code, std::exception_ptr) {
  write(fmt::format("<html><title>{0}: {1}</title><body>{0}: {1}</body></html>", status_code, reason_));
}

void RequestHandler::send_error(int status_code, std::exception_ptr error) {
  if (headers_written_) {
    log(LogLevel::error, LogCategory::general, "Cannot send error response after headers written");
    if (!finished_) {
      try {
        finish();
      } catch (...) {
        log(LogLevel::error, LogCategory::general, "Failed to flush partial response: {}",
            describe_current_exception());
      }
    }
    return;
  }
  clear();
  std::string reason;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const HTTPError& e) {
      reason = e.reason();
    } catch (...) {
    }
  }
  try {
    set_status(status_code, reason);
  } catch (...) {
    set_status(500);
  }
  if (status_code_ == 405 && !headers_.contains("Allow")) {
    try {
      std::string allow;
      for (const std::string& method : allowed_methods()) {
        if (!allow.empty()) allow += ", ";
        allow += method;
      }
      set_header("Allow", allow);
    } catch (...) {
      log(LogLevel::error, LogCategory::application, "Uncaught exception in allowed_methods: {}",
          describe_current_exception());
    }
  }
  try {
    write_error(status_code_, error);
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Uncaught exception in write_error: {}",
        describe_current_exception());
  }
  if (!finished_) {
    try {
      finish();
    } catch (...) {
      log(LogLevel::error, LogCategory::application, "Failed to finish error response: {}",
          describe_current_exception());
    }
  }
}

// ---- cookies

namespace {

bool cookie_legal_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~:").find(static_cast<char>(c)) != std::string_view::npos;
}

// Python's http.cookies._quote: a value of legal characters is sent as is; anything
// else is double-quoted with '"' and '\' backslash-escaped and bytes outside
// printable ASCII (and ',' ';') as \ooo octal.
std::string cookie_quote(std::string_view value) {
  if (std::all_of(value.begin(), value.end(), [](char c) { return cookie_legal_char(static_cast<unsigned char>(c)); })) {
    return std::string(value);
  }
  std::string out = "\"";
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (cookie_legal_char(c) || std::string_view(" ()/<=>?@[]{}").find(ch) != std::string_view::npos) {
      out.push_back(ch);
    } else {
      out += fmt::format("\\{:03o}", c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

void RequestHandler::set_cookie(std::string_view name, std::string_view value, const CookieOptions& options) {
  auto bad = [](std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
  };
  if (name.empty() || bad(name) || bad(value) || !is_legal_cookie_name(name)) {
    throw std::invalid_argument("Invalid cookie name or value");
  }
  if (has_control_chars(options.domain) || has_control_chars(options.path) || has_control_chars(options.samesite) ||
      options.domain.find(';') != std::string::npos || options.path.find(';') != std::string::npos ||
      options.samesite.find(';') != std::string::npos) {
    throw std::invalid_argument("Invalid cookie attribute");
  }
  // Attributes in the order Python's Morsel prints them (sorted by key).
  std::string header = std::string(name) + "=" + cookie_quote(value);
  if (!options.domain.empty()) header += "; Domain=" + options.domain;
  std::optional<std::time_t> expires = options.expires;
  if (!expires && options.expires_days) {
    expires = std::time(nullptr) + static_cast<std::time_t>(*options.expires_days * 86400);
  }
  if (expires) header += "; expires=" + format_http_date(*expires);
  if (options.httponly) header += "; HttpOnly";
  if (options.max_age) header += "; Max-Age=" + std::to_string(*options.max_age);
  if (!options.path.empty()) header += "; Path=" + options.path;
  if (!options.samesite.empty()) header += "; SameSite=" + options.samesite;
  if (options.secure) header += "; Secure";
  for (auto& cookie : new_cookies_) {
    if (cookie.first == name) {
      cookie.second = std::move(header);
      return;
    }
  }
  new_cookies_.emplace_back(std::string(name), std::move(header));
}

void RequestHandler::clear_cookie(std::string_view name, std::string_view path, std::string_view domain) {
  CookieOptions options;
  options.path = std::string(path);
  options.domain = std::string(domain);
  options.expires = std::time(nullptr) - 365 * 86400;
  set_cookie(name, "", options);
}

// ---- ETag

namespace {

// The body's strong validator: XXH3 (64 bits) of the body in 11 base64url characters,
// quoted. Tornado's is the SHA-1 hex; an entity tag is opaque to clients (RFC 9110
// §8.8.3) and only has to change when the body does, which a 64-bit hash does but for a
// 2^-64 chance per change. XXH3 costs a few instructions per byte where SHA-1 cost
// ~1,300 for a short body, and 13 characters stay inside std::string (no allocation).
constexpr size_t kBodyEtagSize = 13;

SQUALL_HOT
std::string_view body_etag(std::string_view body, char (&etag)[kBodyEtagSize]) {
  static constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  XXH64_hash_t hash = XXH3_64bits(body.data(), body.size());
  etag[0] = etag[kBodyEtagSize - 1] = '"';
  for (size_t i = 11; i >= 1; --i) {
    etag[i] = kBase64Url[hash & 63];
    hash >>= 6;
  }
  return {etag, kBodyEtagSize};
}

}  // namespace

std::optional<std::string> RequestHandler::compute_etag() const {
  char etag[kBodyEtagSize];
  return std::string(body_etag(write_buffer_, etag));
}

void RequestHandler::set_etag_header() {
  materialize_head();
  store_etag_header(false);
}

SQUALL_HOT
void RequestHandler::store_etag_header(bool absent) {
  // A handler's compute_etag() has its value checked; RequestHandler's own (a quoted
  // base64url hash) has nothing to check, and is made in place when it is appended.
  const bool own = overridden_methods_ && ((*overridden_methods_ >> kComputeEtagBit) & 1u) == 0;
  if (own && absent) {
    char etag[kBodyEtagSize];
    headers_.add("Etag", body_etag(write_buffer_, etag));
    return;
  }
  if (auto etag = compute_etag()) {
    if (!own) check_header_value(*etag);
    // The name is ours.
    if (absent) {
      headers_.add("Etag", *etag);
    } else {
      headers_.set("Etag", *etag);
    }
  }
}

SQUALL_HOT
bool RequestHandler::check_etag_header() const {
  if (!request().headers.contains("If-None-Match")) return false;  // most requests: no copy made
  std::optional<std::string_view> computed = headers_.get_first("Etag");
  std::string if_none_match = request().headers.get("If-None-Match", "");
  if (!computed || computed->empty() || if_none_match.empty()) return false;
  static const re2::RE2 kTag(R"((\*|(?:W/)?"[^"]*"))");
  re2::StringPiece input(if_none_match);
  std::vector<std::string> etags;
  std::string tag;
  while (re2::RE2::FindAndConsume(&input, kTag, &tag)) etags.push_back(tag);
  if (etags.empty()) return false;
  if (etags[0] == "*") return true;
  auto val = [](std::string_view x) { return x.starts_with("W/") ? x.substr(2) : x; };
  for (const std::string& etag : etags) {
    if (val(etag) == val(*computed)) return true;
  }
  return false;
}

// ---- lifecycle

std::string RequestHandler::request_summary() const {
  return request().method + " " + request().uri + " (" + request().remote_ip + ")";
}

SQUALL_HOT
Task<void> RequestHandler::dispatch_method() {
  const std::string_view m = request().method;
  if (equals_literal(m, "GET")) return get();
  if (equals_literal(m, "HEAD")) return head();
  if (equals_literal(m, "POST")) return post();
  if (equals_literal(m, "DELETE")) return delete_();
  if (equals_literal(m, "PATCH")) return patch();
  if (equals_literal(m, "PUT")) return put();
  if (equals_literal(m, "OPTIONS")) return options();
  throw HTTPError(405);
}

SQUALL_HOT
std::optional<Task<void>> RequestHandler::run_until_suspended(Stage& stage) {
  while (true) {
    // A handler that finished its response (in prepare(), say) skips the steps left.
    if (finished_ && stage != Stage::check) {
      stage = Stage::done;
      return std::nullopt;
    }
    std::optional<Task<void>> step;  // the step started, if it has something to wait for
    switch (stage) {
      case Stage::check:
        stage = Stage::body;
        if (!supports_method(request().method)) throw HTTPError(405);
        // RequestHandler's own prepare() does nothing: not calling it saves a call.
        if (!overridden_methods_ || ((*overridden_methods_ >> kPrepareBit) & 1u) != 0) step = prepare();
        break;
      case Stage::body:
        stage = Stage::method;
        if (prepared_future_ && !prepared_future_->done()) prepared_future_->set_result();
        if (body_future_) step = Task<void>(*body_future_);
        break;
      case Stage::method:
        stage = Stage::finish;
        step = dispatch_method();
        break;
      case Stage::finish:
      case Stage::done:
        stage = Stage::done;
        if (!finished_) finish();
        return std::nullopt;
    }
    if (!step) continue;
    if (!step->done()) return step;
    step->result();  // rethrows what the step failed with
  }
}

SQUALL_HOT
Task<void> RequestHandler::execute() {
  Stage stage = Stage::check;
  try {
    if (std::optional<Task<void>> pending = run_until_suspended(stage)) {
      return execute_suspended(std::move(*pending), stage);
    }
  } catch (...) {
    end_execute(std::current_exception());
    return {};
  }
  end_execute(nullptr);
  return {};
}

Task<void> RequestHandler::execute_suspended(Task<void> pending, Stage next) {
  std::exception_ptr error;
  try {
    co_await std::move(pending);
    while (std::optional<Task<void>> step = run_until_suspended(next)) co_await std::move(*step);
  } catch (...) {
    error = std::current_exception();
  }
  end_execute(error);
}

SQUALL_HOT
void RequestHandler::end_execute(std::exception_ptr error) {
  // Let the connection read on (and discard) the body even after an error.
  if (prepared_future_ && !prepared_future_->done()) prepared_future_->set_result();
  if (error) handle_request_exception(error);
}

void RequestHandler::handle_request_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ConnectionGone&) {
    return;  // nobody to answer
  } catch (...) {
  }
  log_exception(error);
  if (finished_) return;
  int status = 500;
  try {
    std::rethrow_exception(error);
  } catch (const HTTPError& e) {
    status = e.status_code();
  } catch (...) {
  }
  send_error(status, error);
}

void RequestHandler::log_exception(std::exception_ptr error) const {
  try {
    std::rethrow_exception(error);
  } catch (const HTTPError& e) {
    if (!e.log_message().empty()) {
      log(LogLevel::warning, LogCategory::general, "{} {}: {}", e.status_code(), request_summary(), e.log_message());
    }
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Uncaught exception {}: {}", request_summary(),
        describe_current_exception());
  }
}

void RequestHandler::connection_lost() {
  if (connection_gone_) return;
  connection_gone_ = true;
  request().connection = nullptr;
  if (body_future_ && !body_future_->done()) {
    body_future_->set_exception(ConnectionGone());
    body_future_->mark_retrieved();
  }
  if (!finished_) {
    try {
      on_connection_close();
    } catch (...) {
      log(LogLevel::error, LogCategory::application, "Exception in on_connection_close: {}",
          describe_current_exception());
    }
  }
}

// ---- the per-request message delegate (Tornado's _RoutingDelegate + _HandlerDelegate) ----

namespace detail {

namespace {

// Keeps the handler alive until its lifecycle, suspended in `run`, has ended.
Task<void> keep_alive(std::shared_ptr<RequestHandler> handler, Task<void> run) {
  co_await std::move(run);
  handler.reset();
}

}  // namespace

class HandlerDelegate : public HTTPMessageDelegate, public PoolAllocated {
 public:
  // The peer comes from `live_context` when there is one (a server connection), else
  // from `context`, which is copied then only.
  HandlerDelegate(Application& app, const RequestContext* context, const HTTPRequestContext* live_context,
                  HTTPConnection& conn, HTTP1Connection* http1)
      : app_(app), live_context_(live_context), conn_(&conn), http1_(http1) {
    if (!live_context_) context_.emplace(context ? *context : RequestContext{});
  }

  SQUALL_HOT ~HandlerDelegate() override {
    if (handler_ && !handler_->finished()) handler_->connection_lost();
    // A handler still running after its response (a coroutine past finish()) keeps its
    // request, but the connection the request names ends with this exchange.
    if (shared_ && shared_.use_count() > 1) handler_->request().connection = nullptr;
  }

  SQUALL_HOT FlowControl headers_received(const RequestStartLine& start_line, HTTPHeaders& headers) override {
    // The peer as the server connection sees it now (after X-headers), else as given.
    std::string_view remote_ip;
    std::string_view protocol;
    if (live_context_) {
      remote_ip = live_context_->remote_ip;
      protocol = live_context_->protocol.empty() ? std::string_view("http") : std::string_view(live_context_->protocol);
    } else {
      remote_ip = context_->remote_ip;
      protocol = context_->protocol;
    }
    // The connection does not use the headers after this call: the request takes them.
    PooledRequest request = make_pooled_request(start_line, std::move(headers), remote_ip, protocol, conn_);
    MatchResult params;
    owned_ = app_.find_handler(*request, params);
    handler_ = owned_.get();
    handler_->attach(app_, std::move(request), std::move(params));
    stream_ = handler_->stream_request_body();
    if (http1_ && !stream_) {
      // A body taken whole is held in memory: bounded by the buffered-body limit (413
      // beyond it, before the rest is read). A streaming handler keeps max_body_size.
      http1_->set_max_body_size(
          std::min<uint64_t>(http1_->max_body_size(), http1_->params().max_buffered_body_size));
    }
    if (!stream_) return std::nullopt;
    watch_connection_close();
    handler_->prepared_future_.emplace();
    handler_->body_future_.emplace();
    Future<void> prepared = *handler_->prepared_future_;
    start_execute();
    if (prepared.done()) return std::nullopt;
    return prepared;
  }

  FlowControl data_received(std::string chunk) override {
    if (!handler_) return std::nullopt;
    if (!stream_) {
      body_.append(chunk);
      return std::nullopt;
    }
    if (handler_->finished() || handler_->connection_gone_) return std::nullopt;
    Task<void> fed = feed(share(), std::move(chunk));
    if (fed.done()) return std::nullopt;
    return fed.future();
  }

  SQUALL_HOT void finish() override {
    if (!handler_) return;
    if (stream_) {
      if (handler_->body_future_ && !handler_->body_future_->done()) handler_->body_future_->set_result();
      return;
    }
    handler_->request().body = std::move(body_);
    handler_->request().parse_body();
    start_execute();
    // Most handlers have finished by now; only one still running needs to hear at once
    // that its client left.
    if (!handler_->finished()) watch_connection_close();
  }

  void on_connection_close() override {
    if (handler_) handler_->connection_lost();
    conn_ = nullptr;
  }

 private:
  // Runs the handler's lifecycle. Most handlers never suspend: it has ended when
  // execute() returns, and needs no second coroutine (nor a loop round trip) to own the
  // handler.
  SQUALL_HOT void start_execute() {
    Task<void> run = handler_->execute();
    if (run.done()) {
      spawn(run);  // logs a failure, if any
    } else {
      spawn(keep_alive(share(), std::move(run)));
    }
  }

  // The handler as a shared owner sees it: made on first use, when the handler may have
  // to outlive this delegate (its lifecycle suspended, a body piece being fed) or be
  // watched weakly (the close callback). Until then this delegate owns it alone, without
  // a control block or atomic counts (most handlers end inline).
  const std::shared_ptr<RequestHandler>& share() {
    if (!shared_) {
      // The control block comes from the per-thread pool as the handler does.
      shared_ = std::shared_ptr<RequestHandler>(owned_.release(), std::default_delete<RequestHandler>(),
                                                PoolAllocator<RequestHandler>());
    }
    return shared_;
  }

  // Has the connection tell the handler as soon as its client goes away (Tornado's
  // set_close_callback(on_connection_close)). The connection runs this callback only
  // once the request has been read and while the response has not ended (its stream's
  // close callback is set from then until the response ends), so it is set only for a
  // handler that may still be running then: a streaming one, or one that has not
  // finished by the end of the request. A close at any other time reaches the handler
  // through on_connection_close.
  void watch_connection_close() {
    if (!http1_) return;
    http1_->set_close_callback([weak = std::weak_ptr<RequestHandler>(share())] {
      if (auto h = weak.lock()) h->connection_lost();
    });
  }

  static Task<void> feed(std::shared_ptr<RequestHandler> handler, std::string chunk) {
    try {
      co_await handler->data_received(std::move(chunk));
    } catch (...) {
      handler->handle_request_exception(std::current_exception());
    }
  }

  Application& app_;
  std::optional<RequestContext> context_;  // only without a live context
  const HTTPRequestContext* live_context_;
  HTTPConnection* conn_;
  HTTP1Connection* http1_;
  RequestHandler* handler_ = nullptr;  // owned by owned_, or by shared_ once shared
  std::unique_ptr<RequestHandler> owned_;
  std::shared_ptr<RequestHandler> shared_;
  bool stream_ = false;
  std::string body_;
};

}  // namespace detail

// ---- Application --------------------------------------------------------------------------

namespace {

// Answers every request with an HTTPError (Tornado's ErrorHandler).
class ErrorHandler : public RequestHandler {
 public:
  explicit ErrorHandler(int status) : status_(status) {}
  Task<void> prepare() override { throw HTTPError(status_); co_return; }

 private:
  int status_;
};

}  // namespace

Application::Application(std::vector<URLSpec> handlers, ApplicationSettings settings) : settings_(std::move(settings)) {
  add_handlers(std::move(handlers));
}

Application::~Application() = default;

void Application::add_handlers(std::vector<URLSpec> handlers) {
  for (URLSpec& spec : handlers) {
    if (!spec.factory) throw std::invalid_argument("URLSpec without a handler factory: " + spec.pattern);
    router_.add_rule(Rule{std::make_shared<PathMatches>(spec.pattern), std::move(spec.factory), std::move(spec.name)});
  }
}

void Application::add_rule(Rule rule) { router_.add_rule(std::move(rule)); }

std::string Application::reverse_url(std::string_view name, const std::vector<std::string>& args) const {
  if (auto url = router_.reverse_url(name, args)) return *url;
  throw std::out_of_range(std::string(name) + " not found in named urls (or not reversible)");
}

SQUALL_HOT
std::unique_ptr<RequestHandler> Application::find_handler(HTTPServerRequest& request, MatchResult& params) const {
  // find_rule stores arguments into an empty result (the delegate's always is: no
  // assignment made then).
  if (!params.path_args.empty() || !params.path_kwargs.empty()) params = {};
  if (const Rule* rule = router_.find_rule(request, params)) {
    if (const HandlerFactory* factory = rule->factory()) return (*factory)();
    params = {};
  }
  if (settings_.default_handler) return settings_.default_handler();
  return std::make_unique<ErrorHandler>(404);
}

SQUALL_HOT
std::unique_ptr<HTTPMessageDelegate> Application::start_request(HTTPServerConnection& server_conn,
                                                                HTTPConnection& request_conn) {
  // The delegate reads the peer from the live context when the request's head arrives.
  return std::make_unique<detail::HandlerDelegate>(*this, nullptr, &server_conn.context(), request_conn,
                                                   &server_conn.connection());
}

std::unique_ptr<HTTPMessageDelegate> Application::start_request(const RequestContext& context,
                                                                HTTPConnection& request_conn) {
  return std::make_unique<detail::HandlerDelegate>(*this, &context, nullptr, request_conn, nullptr);
}

SQUALL_HOT
void Application::log_request(const RequestHandler& handler) const {
  if (!settings_.log_requests) return;
  int status = handler.get_status();
  LogLevel level = status < 400 ? LogLevel::info : status < 500 ? LogLevel::warning : LogLevel::error;
  if (level < log_level()) return;  // before building the summary and reading the clock
  log(level, LogCategory::access, "{} {} {:.2f}ms", status, handler.request_summary(),
      1000.0 * handler.request().request_time());
}

}  // namespace squall
