#include "squall/http_request.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

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
// up to 65535, the ':' not the first byte), lower-cased: this runs per request.
void assign_host_name(std::string& out, std::string_view host) {
  std::string_view name = host;
  if (std::size_t colon = host.rfind(':'); colon != std::string_view::npos && colon >= 1) {
    const std::string_view digits = host.substr(colon + 1);
    std::uint32_t port = 0;
    bool is_port = !digits.empty() && digits.size() <= 5;
    for (std::size_t i = 0; is_port && i < digits.size(); ++i) {
      const unsigned digit = static_cast<unsigned char>(digits[i]) - static_cast<unsigned>('0');
      is_port = digit <= 9;
      port = port * 10 + digit;
    }
    if (is_port && port <= 65535) name = host.substr(0, colon);
  }
  out.assign(name);
  lower_ascii_in_place(out.data(), out.size());
}

}  // namespace

HTTPServerRequest::HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders hdrs,
                                     const RequestContext& context, HTTPConnection* conn)
    : HTTPServerRequest(start_line, std::move(hdrs), context.remote_ip, context.protocol, conn) {}

HTTPServerRequest::HTTPServerRequest(const RequestStartLine& start_line, HTTPHeaders hdrs,
                                     std::string_view peer_ip, std::string_view protocol_name, HTTPConnection* conn)
    : method(start_line.method),
      uri(start_line.target),
      version(start_line.version),
      headers(std::move(hdrs)),
      remote_ip(peer_ip),
      protocol(protocol_name),
      connection(conn) {
  std::optional<std::string_view> host_header = headers.get_first("Host");
  // Fields are assigned in place (no temporary string moved in): this runs per request.
  host.assign(host_header && !host_header->empty() ? *host_header : std::string_view("127.0.0.1"));
  // absolute-form (RFC 9112 §3.2.2): the target's authority replaces Host (§7.2) and the
  // request is routed by the target's path and query.
  if (!uri.empty() && uri.front() != '/') {
    size_t scheme_end = uri.find("://");
    if (scheme_end != std::string::npos && scheme_end > 0 && uri.find_first_of("/?#") > scheme_end) {
      size_t authority_begin = scheme_end + 3;
      size_t authority_end = std::min(uri.find_first_of("/?#", authority_begin), uri.size());
      std::string_view authority = std::string_view(uri).substr(authority_begin, authority_end - authority_begin);
      if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
      if (!authority.empty()) host = std::string(authority);
      std::string origin_form = uri.substr(authority_end);
      if (origin_form.empty() || origin_form.front() != '/') origin_form.insert(0, "/");
      uri = std::move(origin_form);
    }
  }
  assign_host_name(host_name, host);
  size_t q = uri.find('?');
  path.assign(uri, 0, q);
  if (q != std::string::npos) {  // without a query there are no arguments to parse
    query.assign(uri, q + 1);
    parse_query_into(query, query_arguments);
    for (const auto& entry : query_arguments) {
      for (const auto& v : entry.values) arguments.add(entry.name, v);
    }
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

void HTTPServerRequest::parse_body() {
  if (body.empty() && !headers.contains("Content-Type")) return;  // nothing to parse (most requests)
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
