#include "squall/http_request.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "squall/detail/hot_path.h"
#include "squall/ioloop.h"
#include "squall/log.h"

namespace squall {

namespace {

// ASCII 'A'..'Z' to 'a'..'z' in place (no locale; other bytes, UTF-8 included, are
// kept), eight bytes per step: a host name is a dozen bytes or so, and a loop of a
// compare and a branch per byte cost more than the rest of the name's handling.
void lower_ascii_in_place(char* p, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x80 * kOnes;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    const std::uint64_t low7 = w & ~kHigh;  // each byte's 7 low bits: no carry between bytes
    const std::uint64_t at_least_a = low7 + (0x80 - 'A') * kOnes;     // high bit: >= 'A'
    const std::uint64_t beyond_z = low7 + (0x80 - 'Z' - 1) * kOnes;   // high bit: > 'Z'
    const std::uint64_t upper = at_least_a & ~beyond_z & ~w & kHigh;  // ~w: ASCII bytes only
    w |= upper >> 2;                                                  // 0x80 >> 2 is the case bit
    std::memcpy(p, &w, 8);
  }
  for (; n > 0; ++p, --n) {
    if (*p >= 'A' && *p <= 'Z') *p = static_cast<char>(*p + ('a' - 'A'));
  }
}

// `host` without a port suffix, as split_host_and_port cuts it (":" then 1 to 5 digits
// up to 65535, the ':' not the first byte). Walked back from the end over the digits: a
// Host is cut on every request, and a search for the last ':' went through the host
// name byte by byte first.
SQUALL_HOT
std::string_view without_port(std::string_view host) {
  // The port's value is summed on the way (six digits at most: no overflow), so that
  // the range check is a comparison of numbers, not a call to compare five bytes.
  const std::size_t size = host.size();
  std::size_t start = size;  // of the digits
  std::uint32_t port = 0, place = 1;
  while (start > 0 && size - start <= 5) {
    const auto digit = static_cast<unsigned char>(host[start - 1] - '0');
    if (digit > 9) break;
    port += digit * place;
    place *= 10;
    --start;
  }
  const std::size_t digits = size - start;
  if (digits == 0 || digits > 5 || start < 2 || host[start - 1] != ':' || port > 65535) return host;
  return host.substr(0, start - 1);
}

// The Host field's value, or "127.0.0.1" without one (or with an empty one).
SQUALL_HOT
std::string_view host_field(const HTTPHeaders& headers) {
  std::optional<std::string_view> host = headers.get_first("Host");
  return host && !host->empty() ? *host : std::string_view("127.0.0.1");
}

// absolute-form (RFC 9112 §3.2.2): the target's authority replaces Host (§7.2) and the
// request is routed by the target's path and query. False (nothing changed) for any
// other form.
// Out of line: a proxy's form is rare, and inlined it spread through the request's
// constructor, which every request runs (SQUALL_HOT's pages, detail/hot_path.h).
[[gnu::noinline]] bool take_absolute_form(std::string& uri, std::string& host) {
  if (uri.empty() || uri.front() == '/') return false;
  size_t scheme_end = uri.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0 || uri.find_first_of("/?#") < scheme_end) return false;
  size_t authority_begin = scheme_end + 3;
  size_t authority_end = std::min(uri.find_first_of("/?#", authority_begin), uri.size());
  std::string_view authority = std::string_view(uri).substr(authority_begin, authority_end - authority_begin);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (!authority.empty()) host = std::string(authority);
  std::string origin_form = uri.substr(authority_end);
  if (origin_form.empty() || origin_form.front() != '/') origin_form.insert(0, "/");
  uri = std::move(origin_form);
  return true;
}

}  // namespace

HTTPServerRequest::HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders hdrs,
                                     const RequestContext& context, HTTPConnection* conn)
    : HTTPServerRequest(start_line, std::move(hdrs), context.remote_ip, context.protocol, conn) {}

// Every field is constructed with its value (a string made from a view costs less than
// one made empty and assigned): this runs per request. Members are initialised in their
// declaration order: headers before host, host before host_name, uri before path.
SQUALL_HOT
HTTPServerRequest::HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders&& hdrs,
                                     std::string_view peer_ip, std::string_view protocol_name, HTTPConnection* conn)
    : method(start_line.method),
      uri(start_line.target),
      version(start_line.version),
      headers(std::move(hdrs)),
      remote_ip(peer_ip),
      protocol(protocol_name),
      host(host_field(headers)),
      host_name(without_port(host)),
      path(std::string_view(uri).substr(0, uri.find('?'))),
      connection(conn) {
  // An origin-form target (the usual '/') is told apart here, without the call.
  if (!uri.empty() && uri.front() != '/' && take_absolute_form(uri, host)) {  // rare: a proxy's form
    host_name.assign(without_port(host));
    path.assign(std::string_view(uri).substr(0, uri.find('?')));
  }
  lower_ascii_in_place(host_name.data(), host_name.size());
  // A '?': without a query there are no arguments to parse.
  if (path.size() < uri.size()) take_query();
}

SQUALL_HOT
HTTPServerRequest::~HTTPServerRequest() = default;

void HTTPServerRequest::take_query() {
  query.assign(uri, path.size() + 1);
  parse_query_into(query, query_arguments);
  for (const auto& entry : query_arguments) {
    for (const auto& v : entry.values) arguments.add(entry.name, v);
  }
}

const std::vector<std::pair<std::string, std::string>>& HTTPServerRequest::cookies() const {
  if (!cookies_) {
    cookies_.emplace();
    for (std::string_view header : headers.get_list("Cookie")) {
      for (auto& [name, value] : parse_cookie(header)) {
        if (!is_legal_cookie_name(name)) continue;
        const std::string& key = name;  // clang 14 cannot capture a structured binding
        auto it = std::find_if(cookies_->begin(), cookies_->end(),
                               [&key](const auto& p) { return p.first == key; });
        if (it != cookies_->end()) {
          it->second = std::move(value);
        } else {
          cookies_->emplace_back(std::move(name), std::move(value));
        }
      }
    }
  }
  return *cookies_;
}

std::optional<std::string> HTTPServerRequest::cookie(std::string_view name) const {
  for (const auto& [n, v] : cookies()) {
    if (n == name) return v;
  }
  return std::nullopt;
}

SQUALL_HOT
void HTTPServerRequest::parse_body() {
  if (body.empty() && !headers.contains("Content-Type")) return;  // nothing to parse (most requests)
  parse_body_arguments_now();
}

void HTTPServerRequest::parse_body_arguments_now() {
  std::string content_type = headers.get("Content-Type", "");
  Arguments args;
  Files parsed_files;
  ParseResult<void> result = parse_body_arguments(content_type, body, args, parsed_files, &headers);
  if (!result) {
    log(LogLevel::warning, LogCategory::general, "Invalid request body ({}): {}",
        result.error().status, result.error().reason);
    return;
  }
  for (const auto& entry : args) {
    for (const auto& v : entry.values) {
      arguments.add(entry.name, v);
      body_arguments.add(entry.name, v);
    }
  }
  files.merge(std::move(parsed_files));
}

std::chrono::steady_clock::time_point HTTPServerRequest::loop_time() noexcept {
  const IOLoop* loop = IOLoop::current_or_null();
  return loop != nullptr ? loop->cached_time() : std::chrono::steady_clock::now();
}

HTTPServerRequest::WallClock::time_point HTTPServerRequest::start_time() const {
  // The wall clock is read only when asked: the request keeps the monotonic start alone.
  const auto elapsed = std::chrono::steady_clock::now() - start_;
  return WallClock::now() - std::chrono::duration_cast<WallClock::duration>(elapsed);
}

double HTTPServerRequest::request_time() const {
  auto end = finish_time_.value_or(std::chrono::steady_clock::now());
  return std::chrono::duration<double>(end - start_).count();
}

}  // namespace squall
