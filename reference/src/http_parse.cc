#include "squall/http_parse.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

#include "squall/detail/hot_path.h"

namespace squall {

namespace {

// ---- character classes ------------------------------------------------------------

enum CharClass : std::uint8_t {
  kTchar = 1,       // RFC 9110 §5.6.2 tchar
  kFieldChar = 2,   // field-vchar / SP / HTAB (RFC 9110 §5.5)
  kTargetChar = 4,  // visible US-ASCII (request-target bytes before URI checks)
  kHexDigit = 8,
  kQdText = 16,     // RFC 9110 §5.6.4 qdtext
  kRegNameChar = 32,  // RFC 3986 unreserved / sub-delims: a reg-name's bytes besides pct-encoded
  kPlainTargetChar = 64,  // kTargetChar but '%', backslash, '#' (what the strict target checks look at)
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    std::uint8_t bits = 0;
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                     std::string_view::npos) {
      bits |= kTchar;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) bits |= kFieldChar;
    if (c > 0x20 && c < 0x7f) bits |= kTargetChar;
    if (c > 0x20 && c < 0x7f && c != '%' && c != '\\' && c != '#') bits |= kPlainTargetChar;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      bits |= kHexDigit;
    }
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
        (c >= 0x5d && c <= 0x7e) || c >= 0x80) {
      bits |= kQdText;
    }
    if (alnum || std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos) {
      bits |= kRegNameChar;
    }
    t[static_cast<std::size_t>(c)] = bits;
  }
  return t;
}

constexpr std::array<std::uint8_t, 256> kCharClasses = make_char_classes();

inline bool has_class(char c, CharClass cls) noexcept {
  return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }


std::size_t skip_ows(std::string_view s, std::size_t pos) noexcept {
  while (pos < s.size() && is_ows(s[pos])) ++pos;
  return pos;
}

std::size_t skip_token(std::string_view s, std::size_t pos) noexcept {
  while (pos < s.size() && is_tchar(s[pos])) ++pos;
  return pos;
}

// ---- byte scans -------------------------------------------------------------------
//
// The head parser's inner loops. Each returns the first byte of [p, end) outside a class
// (or end); the caller then looks at that one byte, so one pass over a line both finds
// where a part ends and proves everything before it valid. Each has a portable version
// (a class table, or 8 bytes at a time) and, where SSE2 is available (always on x86-64,
// so no runtime dispatch is needed), a 16-bytes-at-a-time version used while 16 bytes
// remain; the last few bytes go through the portable one, so no load ever reaches past
// `end`. The tests compare the two on every byte value at every position.

// True if any byte of the 8-byte word is below 0x20 or equal to 0x7f (exact as a
// yes/no answer; the classic "hasless"/"haszero" bit tricks).
inline bool word_may_hold_ctl(std::uint64_t w) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  const std::uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
  const std::uint64_t del = w ^ (kOnes * 0x7f);
  const std::uint64_t has_del = (del - kOnes) & ~del & kHighs;
  return (below_space | has_del) != 0;
}

// First byte that is not a field byte (RFC 9110 §5.5: HTAB, SP, VCHAR, obs-text), i.e.
// a CTL other than HTAB, or DEL. In a field line that byte is normally the CR or LF
// ending it.
SQUALL_HOT
const char* field_end_portable(const char* p, const char* end) noexcept {
  // A word without any byte < 0x20 or DEL is skipped whole; one where the test fires
  // (a bad byte, or only an HTAB) is checked byte by byte.
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if (!word_may_hold_ctl(w)) {
      p += 8;
      continue;
    }
    for (const char* const word_end = p + 8; p < word_end; ++p) {
      if (!has_class(*p, kFieldChar)) return p;
    }
  }
  while (p < end && has_class(*p, kFieldChar)) ++p;
  return p;
}

// First byte that is not a tchar (RFC 9110 §5.6.2).
const char* token_end_portable(const char* p, const char* end) noexcept {
  while (p < end && has_class(*p, kTchar)) ++p;
  return p;
}

// First byte that is not visible US-ASCII (0x21-0x7e): in a request line, the SP after
// the target.
const char* target_end_portable(const char* p, const char* end) noexcept {
  while (p < end && has_class(*p, kTargetChar)) ++p;
  return p;
}

// First byte that is not visible US-ASCII or is '%', a backslash or '#': a target scanned to its
// SP with this needs none of the strict checks (target_strictly_valid).
const char* plain_target_end_portable(const char* p, const char* end) noexcept {
  while (p < end && has_class(*p, kPlainTargetChar)) ++p;
  return p;
}

#if defined(__SSE2__)

inline __m128i load16(const char* p) noexcept { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Bit i set for each byte i of `v` that is 0xff (a compare result).
inline unsigned mask16(__m128i v) noexcept { return static_cast<unsigned>(_mm_movemask_epi8(v)); }

const char* field_end_sse2(const char* p, const char* end) noexcept {
  // Bad: unsigned <= 0x1f (as min(v, 0x1f) == v) and not HTAB, or DEL. obs-text passes.
  const __m128i max_ctl = _mm_set1_epi8(0x1f);
  const __m128i htab = _mm_set1_epi8('\t');
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; end - p >= 16; p += 16) {
    const __m128i v = load16(p);
    const __m128i ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, htab), _mm_cmpeq_epi8(_mm_min_epu8(v, max_ctl), v));
    const unsigned bad = mask16(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
    if (bad != 0) return p + std::countr_zero(bad);
  }
  return field_end_portable(p, end);
}

SQUALL_HOT
const char* token_end_sse2(const char* p, const char* end) noexcept {
  // An exact tchar test needs about a dozen compares, so the block test accepts only the
  // bytes real field names and methods are made of, ALPHA / DIGIT / "-", and the byte
  // it stops at gets the exact table: a non-tchar ends the token; any other tchar ("_",
  // ".", "!"...) is stepped over and the block scan resumes after it.
  // Unsigned range tests with signed compares: x - lo + 0x80 < -0x80 + n.
  const __m128i case_bit = _mm_set1_epi8(0x20);
  const __m128i alpha_bias = _mm_set1_epi8(static_cast<char>(0x80 - 'a'));
  const __m128i alpha_limit = _mm_set1_epi8(static_cast<char>(-0x80 + 26));
  const __m128i digit_bias = _mm_set1_epi8(static_cast<char>(0x80 - '0'));
  const __m128i digit_limit = _mm_set1_epi8(static_cast<char>(-0x80 + 10));
  const __m128i dash = _mm_set1_epi8('-');
  while (end - p >= 16) {
    const __m128i v = load16(p);
    const __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, case_bit), alpha_bias), alpha_limit);
    const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, digit_bias), digit_limit);
    const unsigned other = ~mask16(_mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash))) & 0xffffu;
    if (other == 0) {
      p += 16;
      continue;
    }
    p += std::countr_zero(other);
    if (!has_class(*p, kTchar)) return p;
    ++p;
  }
  return token_end_portable(p, end);
}

const char* target_end_sse2(const char* p, const char* end) noexcept {
  // Bad: below 0x21 or at least 0x80 (one signed compare: those bytes are negative), or DEL.
  const __m128i first_visible = _mm_set1_epi8(0x21);
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; end - p >= 16; p += 16) {
    const __m128i v = load16(p);
    const unsigned bad = mask16(_mm_or_si128(_mm_cmplt_epi8(v, first_visible), _mm_cmpeq_epi8(v, del)));
    if (bad != 0) return p + std::countr_zero(bad);
  }
  return target_end_portable(p, end);
}

const char* plain_target_end_sse2(const char* p, const char* end) noexcept {
  // As target_end_sse2, and stopping at the three bytes the strict checks are about.
  const __m128i first_visible = _mm_set1_epi8(0x21);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i percent = _mm_set1_epi8('%');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i hash = _mm_set1_epi8('#');
  for (; end - p >= 16; p += 16) {
    const __m128i v = load16(p);
    const __m128i odd = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, percent), _mm_cmpeq_epi8(v, backslash)),
                                     _mm_cmpeq_epi8(v, hash));
    const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, first_visible), _mm_cmpeq_epi8(v, del));
    const unsigned stop = mask16(_mm_or_si128(bad, odd));
    if (stop != 0) return p + std::countr_zero(stop);
  }
  return plain_target_end_portable(p, end);
}

inline const char* field_end(const char* p, const char* end) noexcept { return field_end_sse2(p, end); }
inline const char* token_end(const char* p, const char* end) noexcept { return token_end_sse2(p, end); }
inline const char* target_end(const char* p, const char* end) noexcept { return target_end_sse2(p, end); }
inline const char* plain_target_end(const char* p, const char* end) noexcept { return plain_target_end_sse2(p, end); }

#else  // !defined(__SSE2__)

inline const char* field_end(const char* p, const char* end) noexcept { return field_end_portable(p, end); }
inline const char* token_end(const char* p, const char* end) noexcept { return token_end_portable(p, end); }
inline const char* target_end(const char* p, const char* end) noexcept { return target_end_portable(p, end); }
inline const char* plain_target_end(const char* p, const char* end) noexcept { return plain_target_end_portable(p, end); }

#endif

bool field_bytes_valid(const char* p, std::size_t n) noexcept { return field_end(p, p + n) == p + n; }

// ---- the end of a head ------------------------------------------------------------------
//
// crlf_head_end looks at a buffer 32 bytes at a time (two 16-byte loads) through two bit
// masks, CR and LF (bit i for byte i). Its line ends are all CRLF exactly when the LF bits
// are the CR bits shifted by one (carried across blocks), and then the head ends at the
// first LF two bytes after another ("\r\n\r\n"): a few mask operations a block where the
// search by lines took two memchr calls and a look at the bytes around each hit per line.

struct LineEndBits {
  unsigned cr = 0;
  unsigned lf = 0;
};

// The CR and LF bits of the `count` (at most 16) bytes at `p`; bits past them clear.
LineEndBits line_end_bits_portable(const char* p, std::size_t count) noexcept {
  LineEndBits bits;
  for (std::size_t i = 0; i < count; ++i) {
    bits.cr |= static_cast<unsigned>(p[i] == '\r') << i;
    bits.lf |= static_cast<unsigned>(p[i] == '\n') << i;
  }
  return bits;
}
LineEndBits block_line_end_bits_portable(const char* p) noexcept { return line_end_bits_portable(p, 16); }
LineEndBits tail_line_end_bits_portable(const char* begin, std::size_t pos, std::size_t end) noexcept {
  return line_end_bits_portable(begin + pos, end - pos);
}

#if defined(__SSE2__)
LineEndBits line_end_bits_sse2(__m128i v) noexcept {
  return {mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))), mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')))};
}
SQUALL_HOT
LineEndBits block_line_end_bits_sse2(const char* p) noexcept { return line_end_bits_sse2(load16(p)); }
// The last bytes [pos, end), fewer than 16, read as the last 16 bytes of the buffer shifted
// down (no load leaves it), or byte by byte when the buffer is shorter.
SQUALL_HOT
LineEndBits tail_line_end_bits_sse2(const char* begin, std::size_t pos, std::size_t end) noexcept {
  if (end < 16) return line_end_bits_portable(begin + pos, end - pos);
  const LineEndBits bits = line_end_bits_sse2(load16(begin + end - 16));
  const unsigned shift = static_cast<unsigned>(16 - (end - pos));
  return {bits.cr >> shift, bits.lf >> shift};
}
#endif

// 32 bytes at a time: two blocks' bits side by side.
LineEndBits joined(LineEndBits low, LineEndBits high) noexcept {
  return {low.cr | high.cr << 16, low.lf | high.lf << 16};
}
template <LineEndBits (*Block16)(const char*)>
LineEndBits block32_line_end_bits(const char* p) noexcept {
  return joined(Block16(p), Block16(p + 16));
}
template <LineEndBits (*Block16)(const char*), LineEndBits (*Tail16)(const char*, std::size_t, std::size_t)>
LineEndBits tail32_line_end_bits(const char* begin, std::size_t pos, std::size_t end) noexcept {
  if (end - pos < 16) return Tail16(begin, pos, end);
  return joined(Block16(begin + pos), pos + 16 < end ? Tail16(begin, pos + 16, end) : LineEndBits{});
}

// The search's state from one block of 32 bytes to the next.
struct CrlfHeadSearch {
  unsigned cr_before = 0;  // the previous block's last byte is a CR (bit 0)
  unsigned lf_before = 0;  // the previous block's last two LF bits (as bits 0 and 1)

  static constexpr std::size_t kNotUsual = std::string_view::npos;

  // The block at `pos`: 0 to go on, the head's length, or kNotUsual.
  std::size_t step(LineEndBits bits, std::size_t pos) noexcept {
    if ((bits.cr | bits.lf | cr_before) == 0) {  // inside a line (most blocks of a long head)
      lf_before = 0;
      return 0;
    }
    const unsigned ends = bits.lf & ((bits.lf << 2) | lf_before);
    // Only the bytes up to the end of the head must pair; the next request follows it.
    // (2u << 31 is 0: a head ending at the block's last byte covers all of it.)
    const unsigned upto = ends != 0 ? (2u << std::countr_zero(ends)) - 1 : ~0u;
    if ((((bits.cr << 1) | cr_before) ^ bits.lf) & upto) return kNotUsual;
    if (ends != 0) return pos + static_cast<std::size_t>(std::countr_zero(ends)) + 1;
    cr_before = bits.cr >> 31;
    lf_before = bits.lf >> 30;
    return 0;
  }
};

template <LineEndBits (*Block16)(const char*), LineEndBits (*Tail16)(const char*, std::size_t, std::size_t)>
SQUALL_HOT
std::size_t crlf_head_end_with(std::string_view b) noexcept {
  const std::size_t n = b.size();
  if (n == 0 || b[0] == '\r' || b[0] == '\n') return 0;
  CrlfHeadSearch search;
  std::size_t pos = 0;
  std::size_t found = 0;
  for (; found == 0 && n - pos >= 32; pos += 32) found = search.step(block32_line_end_bits<Block16>(b.data() + pos), pos);
  if (found == 0 && pos < n) found = search.step(tail32_line_end_bits<Block16, Tail16>(b.data(), pos, n), pos);
  return found == CrlfHeadSearch::kNotUsual ? 0 : found;
}

// Position just past a quoted-string starting at `pos` (which holds '"'), or npos.
std::size_t skip_quoted_string(std::string_view s, std::size_t pos) noexcept {
  for (++pos; pos < s.size(); ++pos) {
    const char c = s[pos];
    if (c == '"') return pos + 1;
    if (c == '\\') {
      if (++pos >= s.size() || !has_class(s[pos], kFieldChar)) return std::string_view::npos;
    } else if (!has_class(c, kQdText)) {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

// Position just past `token [ BWS "=" BWS ( token / quoted-string ) ]` at `pos`, or npos.
std::size_t skip_parameter(std::string_view s, std::size_t pos) noexcept {
  const std::size_t name_end = skip_token(s, pos);
  if (name_end == pos) return std::string_view::npos;
  std::size_t p = skip_ows(s, name_end);
  if (p >= s.size() || s[p] != '=') return name_end;
  p = skip_ows(s, p + 1);
  if (p < s.size() && s[p] == '"') return skip_quoted_string(s, p);
  const std::size_t value_end = skip_token(s, p);
  return value_end == p ? std::string_view::npos : value_end;
}

// ---- lines ------------------------------------------------------------------------

// One line of a head: its content (terminator removed) and where the next one starts.
struct Line {
  std::string_view content;
  std::size_t next = 0;
  bool terminated = false;
  bool bare_lf = false;  // ended by LF without CR
};

Line next_line(std::string_view s, std::size_t pos) noexcept {
  const char* begin = s.data() + pos;
  const void* nl = std::memchr(begin, '\n', s.size() - pos);
  if (nl == nullptr) return {s.substr(pos), s.size(), false};
  std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - s.data());
  const std::size_t next = end + 1;
  const bool crlf = end > pos && s[end - 1] == '\r';
  if (crlf) --end;
  return {s.substr(pos, end - pos), next, true, !crlf};
}

constexpr ParseError kBareLF{400, "bare LF line terminator"};

// Skips empty lines (CRLF, or LF when allowed) at the start of a head; returns where
// content starts.
std::size_t skip_blank_lines(std::string_view head, bool allow_lf) noexcept {
  std::size_t pos = 0;
  for (;;) {
    if (allow_lf && head.substr(pos, 1) == "\n") {
      pos += 1;
    } else if (head.substr(pos, 2) == "\r\n") {
      pos += 2;
    } else {
      return pos;
    }
  }
}

// "HTTP/" DIGIT "." DIGIT. Returns {major, minor} or nullopt for anything else.
std::optional<std::pair<int, int>> parse_http_version(std::string_view v) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7])) {
    return std::nullopt;
  }
  return std::pair<int, int>{v[5] - '0', v[7] - '0'};
}

bool target_valid(std::string_view target, bool allow_obs_text) noexcept {
  const char* const end = target.data() + target.size();
  for (const char* p = target_end(target.data(), end); p != end; p = target_end(p + 1, end)) {
    if (!allow_obs_text || static_cast<unsigned char>(*p) < 0x80) return false;
  }
  return true;
}

// Whether the two bytes after a '%' encode a control (%00-%1f, %7f).
inline bool escapes_control(char hi, char lo) noexcept {
  return ((hi == '0' || hi == '1') && has_class(lo, kHexDigit)) || (hi == '7' && (lo | 0x20) == 'f');
}

// Strict target checks beyond the byte class: no backslash, no fragment, no
// percent-encoded control (%00-%1f, %7f).
bool target_strictly_valid(std::string_view target) noexcept {
  for (std::size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (c == '\\' || c == '#') return false;
    if (c == '%' && i + 2 < target.size() && escapes_control(target[i + 1], target[i + 2])) return false;
  }
  return true;
}

inline bool is_reg_name_char(char c) noexcept { return has_class(c, kRegNameChar); }

// The first byte of [p, end) past a reg-name (RFC 3986 §3.2.2: unreserved, sub-delims,
// pct-encoded): end, or the byte that cannot continue it (a '%' not followed by two hex
// digits stops the scan on the '%').
const char* reg_name_end(const char* p, const char* end) noexcept {
  while (p < end) {
    if (is_reg_name_char(*p)) {
      ++p;
    } else if (*p == '%' && end - p > 2 && has_class(p[1], kHexDigit) && has_class(p[2], kHexDigit)) {
      p += 3;
    } else {
      break;
    }
  }
  return p;
}

// The inside of an IP-literal's brackets: IPv6address (hex digits, ':' and '.' for a
// trailing IPv4 part, at most 8 groups) or IPvFuture ("v" 1*HEXDIG "." 1*(...)).
bool is_ip_literal_body(std::string_view s) noexcept {
  if (s.empty()) return false;
  if (s.front() == 'v' || s.front() == 'V') {
    std::size_t i = 1;
    while (i < s.size() && has_class(s[i], kHexDigit)) ++i;
    if (i == 1 || i >= s.size() || s[i] != '.' || i + 1 == s.size()) return false;
    for (++i; i < s.size(); ++i) {
      if (!is_reg_name_char(s[i]) && s[i] != ':') return false;
    }
    return true;
  }
  std::size_t colons = 0;
  for (char c : s) {
    if (c == ':') {
      ++colons;
    } else if (!has_class(c, kHexDigit) && c != '.') {
      return false;
    }
  }
  return colons >= 2 && colons <= 7 && s.find(":::") == std::string_view::npos;
}

// Whether a request-target has one of the forms of RFC 9112 §3.2 for this method.
SQUALL_HOT
bool target_form_valid(std::string_view method, std::string_view target) noexcept {
  if (method == "CONNECT") return is_valid_authority(target, /*require_port=*/true);  // authority-form only
  if (target.front() == '/') return true;                            // origin-form
  if (target == "*") return method == "OPTIONS";                     // asterisk-form
  // absolute-form: scheme "://" ... (scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ))
  const std::size_t colon = target.find(':');
  if (colon == 0 || colon == std::string_view::npos || target.substr(colon, 3) != "://") return false;
  for (std::size_t i = 0; i < colon; ++i) {
    const char c = target[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && (i == 0 || (!is_digit(c) && c != '+' && c != '-' && c != '.'))) return false;
  }
  return true;
}

// The length of "ContentLength", the shortest name is_framing_lookalike is true for.
constexpr std::size_t kShortestLookalike = 13;

// ---- one-pass fast paths ----------------------------------------------------------------
//
// A well-formed line is accepted in one pass: a scan to the end of each part, then a look
// at the byte it stopped at. Whatever they do not accept (an error, obs-fold, an overlong
// line, an unterminated request line...) goes to the line-at-a-time code below them,
// which is the definition of the grammar: it finds the line with memchr and applies the
// checks in their documented order, so an error and its status are the same whichever
// way a line went, and the fast paths only have to be right about what they accept.

// Where the line continues after `stop`, the byte a scan stopped at: just past the CRLF
// or LF there, or nullptr when `stop` is anything else (a bare CR, a CTL). A line that
// runs to `end` has no terminator; the caller decides whether that is allowed.
inline const char* after_line_end(const char* stop, const char* end, bool allow_lf) noexcept {
  if (*stop == '\n') return allow_lf ? stop + 1 : nullptr;
  if (*stop == '\r' && end - stop >= 2 && stop[1] == '\n') return stop + 2;
  return nullptr;
}

// `token ":" OWS field-value OWS` ending in CRLF, LF or at `end` (the last line of a block
// may be unterminated), no longer than max_line before its terminator. Fills `field` and
// returns where the next line starts, or returns nullptr.
inline const char* accept_field_line(const char* p, const char* end, std::size_t max_line, bool allow_lf,
                                     HeaderField& field) noexcept {
  const char* const colon = token_end(p, end);
  if (colon == p || colon == end || *colon != ':') return nullptr;
  const char* value = colon + 1;
  if (value < end && *value == ' ') ++value;  // the usual single SP, then a look for more OWS
  while (value < end && is_ows(*value)) ++value;
  // One scan validates the value and finds the line's end: the first byte that is not a
  // field byte must be the CR or LF of the terminator.
  const char* const stop = field_end(value, end);
  const char* const next = stop == end ? end : after_line_end(stop, end, allow_lf);
  if (next == nullptr || static_cast<std::size_t>(stop - p) > max_line) return nullptr;
  const char* value_end = stop;
  while (value_end > value && is_ows(value_end[-1])) --value_end;
  field = {std::string_view(p, static_cast<std::size_t>(colon - p)),
           std::string_view(value, static_cast<std::size_t>(value_end - value))};
  return next;
}

// `method SP target SP HTTP/1.x` ending in CRLF or LF, no longer than max_line, with an
// origin-form target or one whose form suits the method. Fills `out` and returns where
// the header block starts, or returns nullptr.
inline const char* accept_request_line(const char* p, const char* end, std::size_t max_line,
                                       const ParsePolicy& policy, RequestLine& out) noexcept {
  const char* const method_end = token_end(p, end);
  if (method_end == p || method_end == end || *method_end != ' ') return nullptr;
  const char* const target = method_end + 1;
  // Most targets are plain: one scan to the SP, looking at the two bytes after each '%',
  // proves them free of what the strict checks look for (an escaped control is hex digits,
  // so it lies inside the target). Otherwise the scan goes on over '%', backslash and '#'
  // and the checks run below.
  const char* target_stop = plain_target_end(target, end);  // obs-text also stops here
  bool plain = target_stop != end && *target_stop == ' ';
  if (!plain) {
    while (target_stop != end && *target_stop == '%' &&
           !(end - target_stop > 2 && escapes_control(target_stop[1], target_stop[2]))) {
      target_stop = plain_target_end(target_stop + 1, end);
    }
    plain = target_stop != end && *target_stop == ' ';
    if (!plain && target_stop != end) target_stop = target_end(target_stop, end);
  }
  if (target_stop == target || target_stop == end || *target_stop != ' ') return nullptr;
  const char* const version = target_stop + 1;
  if (end - version < 9 || std::memcmp(version, "HTTP/1.", 7) != 0 || !is_digit(version[7])) return nullptr;
  const char* const next = after_line_end(version + 8, end, policy.allow_bare_lf);
  if (next == nullptr || static_cast<std::size_t>(version + 8 - p) > max_line) return nullptr;
  out.method = std::string_view(p, static_cast<std::size_t>(method_end - p));
  out.target = std::string_view(target, static_cast<std::size_t>(target_stop - target));
  if (!target_form_valid(out.method, out.target)) return nullptr;
  if (!policy.allow_long_method && out.method.size() > ParsePolicy::max_method_length) return nullptr;
  if (!plain && !policy.allow_odd_target && !target_strictly_valid(out.target)) return nullptr;
  out.version = std::string_view(version, 8);
  out.minor = version[7] - '0';
  return next;
}

ParseError field_name_error(std::string_view name) noexcept {
  if (name.empty()) return {400, "empty header name"};
  if (is_ows(name.back())) return {400, "whitespace before colon in header"};
  return {400, "invalid character in header name"};
}

// Appends a continuation line (obs-fold) to the last field's value view.
ParseResult<void> extend_folded_value(std::vector<HeaderField>& out, std::size_t first,
                                      std::string_view line) {
  if (out.size() == first) return ParseError{400, "whitespace before first header"};
  const std::string_view more = trim_ows(line);
  if (!field_bytes_valid(more.data(), more.size())) {
    return ParseError{400, "invalid character in header value"};
  }
  if (more.empty()) return {};
  HeaderField& last = out.back();
  const char* begin = last.value.empty() ? more.data() : last.value.data();
  last.value = std::string_view(begin, static_cast<std::size_t>(more.data() + more.size() - begin));
  return {};
}

HTTPHeaders headers_from(const std::vector<HeaderField>& fields, bool unfold) {
  if (!unfold) return HTTPHeaders::from_fields(fields);
  HTTPHeaders headers;
  headers.reserve(fields.size(), 0);
  for (const HeaderField& f : fields) {
    if (f.value.find('\n') == std::string_view::npos) {
      headers.add(f.name, f.value);
    } else {
      headers.add(f.name, unfold_field_value(f.value));
    }
  }
  return headers;
}

}  // namespace

// ---- tokens -------------------------------------------------------------------------

SQUALL_HOT
std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_tchar(char c) noexcept { return has_class(c, kTchar); }

bool is_token(std::string_view s) noexcept {
  return !s.empty() && token_end(s.data(), s.data() + s.size()) == s.data() + s.size();
}

bool is_valid_field_value(std::string_view value) noexcept {
  return field_bytes_valid(value.data(), value.size());
}

bool is_valid_authority(std::string_view value, bool require_port) noexcept {
  std::string_view host = value;
  std::string_view port;
  bool has_port = false;
  if (!value.empty() && value.front() == '[') {
    const std::size_t close = value.find(']');
    if (close == std::string_view::npos || !is_ip_literal_body(value.substr(1, close - 1))) return false;
    host = value.substr(0, close + 1);
    const std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    // A reg-name holds no ':', so the host runs to the first byte that is not reg-name;
    // that byte must be the end or the ':' before the port (any later ':' is not a digit).
    const char* const end = value.data() + value.size();
    const char* const host_end = reg_name_end(value.data(), end);
    host = value.substr(0, static_cast<std::size_t>(host_end - value.data()));
    if (host_end != end) {
      if (*host_end != ':') return false;
      port = value.substr(host.size() + 1);
      has_port = true;
    }
  }
  for (char c : port) {
    if (!is_digit(c)) return false;
  }
  return !require_port || (has_port && !port.empty() && !host.empty());
}

#if defined(__SSE2__)
namespace {

// is_valid_authority_in's fast path: its verdict on a value of 1-16 bytes whose bytes are
// letters, digits, '.' and '-', then optionally ':' and digits; nullopt for anything else
// (or when 16 bytes around the value are not readable).
std::optional<bool> usual_authority_verdict(std::string_view value, std::string_view readable,
                                            bool require_port) noexcept {
  const std::size_t n = value.size();
  if (n == 0 || n > 16) return std::nullopt;
  const char* const readable_end = readable.data() + readable.size();
  const char* from = value.data();
  if (readable_end - from < 16) {  // read the 16 bytes ending with the value instead
    if (static_cast<std::size_t>(value.data() - readable.data()) + n < 16) return std::nullopt;
    from = value.data() + n - 16;
  }
  const unsigned shift = static_cast<unsigned>(value.data() - from);
  const unsigned in_value = ((1u << n) - 1) << shift;
  // The unsigned range tests of token_end_sse2: x - lo + 0x80 < -0x80 + count.
  const __m128i v = load16(from);
  const __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)),
                                                    _mm_set1_epi8(static_cast<char>(0x80 - 'a'))),
                                       _mm_set1_epi8(static_cast<char>(-0x80 + 26)));
  const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(0x80 - '0'))),
                                       _mm_set1_epi8(static_cast<char>(-0x80 + 10)));
  const __m128i dot_dash = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')), _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
  const unsigned digits = mask16(digit) & in_value;
  const unsigned other = ~mask16(_mm_or_si128(_mm_or_si128(alpha, digit), dot_dash)) & in_value;
  if (other == 0) return !require_port;  // a reg-name without a port
  const unsigned colon = static_cast<unsigned>(std::countr_zero(other));
  if (from[colon] != ':') return std::nullopt;
  const unsigned port = in_value & ~((2u << colon) - 1);  // the bytes after the colon
  if ((digits & port) != port) return std::nullopt;
  return !require_port || (colon > shift && port != 0);
}

}  // namespace
#endif

SQUALL_HOT
bool is_valid_authority_in(std::string_view value, std::string_view readable, bool require_port) noexcept {
#if defined(__SSE2__)
  if (const std::optional<bool> verdict = usual_authority_verdict(value, readable, require_port)) return *verdict;
#else
  (void)readable;
#endif
  return is_valid_authority(value, require_port);
}

bool detail::is_valid_authority_in(std::string_view value, std::string_view readable, bool require_port,
                                   bool portable) noexcept {
  return portable ? is_valid_authority(value, require_port) : squall::is_valid_authority_in(value, readable, require_port);
}

// ---- start lines ----------------------------------------------------------------------

ParseResult<RequestLine> parse_request_line(std::string_view line, const HeadLimits& limits) {
  if (line.size() > limits.max_start_line) return ParseError{414, "request line too long"};
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return ParseError{400, "malformed request line"};
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseError{400, "malformed request line"};

  RequestLine out;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out.version = line.substr(sp2 + 1);
  if (!is_token(out.method)) return ParseError{400, "invalid method"};
  if (!limits.policy.allow_long_method && out.method.size() > ParsePolicy::max_method_length) {
    return ParseError{501, "method too long"};
  }
  if (out.target.empty()) return ParseError{400, "empty request target"};
  if (!target_valid(out.target, limits.allow_obs_text_in_target)) {
    return ParseError{400, "invalid character in request target"};
  }
  if (!limits.policy.allow_odd_target && !target_strictly_valid(out.target)) {
    return ParseError{400, "control, backslash or fragment in request target"};
  }
  if (!target_form_valid(out.method, out.target)) return ParseError{400, "invalid request target form"};
  const auto version = parse_http_version(out.version);
  if (!version) return ParseError{400, "malformed HTTP version"};
  if (version->first != 1) return ParseError{505, "HTTP version not supported"};
  out.minor = version->second;
  return out;
}

ParseResult<ResponseLine> parse_response_line(std::string_view line) {
  // HTTP-version SP 3DIGIT [ SP reason-phrase ]
  if (line.size() < 12 || line[8] != ' ') return ParseError{400, "malformed status line"};
  const auto version = parse_http_version(line.substr(0, 8));
  if (!version) return ParseError{400, "malformed HTTP version"};
  if (version->first != 1) return ParseError{505, "HTTP version not supported"};
  const std::string_view code = line.substr(9, 3);
  if (code[0] < '1' || code[0] > '9' || !is_digit(code[1]) || !is_digit(code[2])) {
    return ParseError{400, "malformed status code"};
  }
  ResponseLine out;
  out.version = line.substr(0, 8);
  out.minor = version->second;
  out.code = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  if (line.size() > 12) {
    if (line[12] != ' ') return ParseError{400, "malformed status code"};
    out.reason = line.substr(13);
    if (!is_valid_field_value(out.reason)) return ParseError{400, "invalid reason phrase"};
  }
  return out;
}

// ---- header blocks --------------------------------------------------------------------

SQUALL_HOT
ParseResult<void> parse_header_block(std::string_view block, std::vector<HeaderField>& out,
                                     const HeadLimits& limits) {
  const std::size_t first = out.size();
  const char* const end = block.data() + block.size();
  const bool allow_lf = limits.policy.allow_bare_lf;
  const bool check_lookalikes = !limits.policy.allow_framing_lookalikes;
  std::size_t pos = 0;
  while (pos < block.size()) {
    const char* const p = block.data() + pos;
    if (const char* blank_end = after_line_end(p, end, allow_lf)) {  // the empty line ending the head
      if (blank_end != end) return ParseError{400, "data after end of headers"};
      break;
    }
    if (*p == '\n') return kBareLF;  // an empty line ended by a bare LF (not allowed)
    HeaderField field;
    if (const char* next = accept_field_line(p, end, limits.max_field_line, allow_lf, field)) {
      if (out.size() - first >= limits.max_fields) return ParseError{431, "too many headers"};
      // (No name shorter than "ContentLength" is one: most are decided without the call.)
      if (check_lookalikes && field.name.size() >= kShortestLookalike && is_framing_lookalike(field.name)) {
        return ParseError{400, "header name resembles a framing field"};
      }
      out.push_back(field);
      pos = static_cast<std::size_t>(next - block.data());
      continue;
    }
    // Not a plain well-formed field line: the line-at-a-time definition (its content is
    // not empty: the blank line was handled above).
    const Line line = next_line(block, pos);
    const std::string_view text = line.content;
    if (text.size() > limits.max_field_line) return ParseError{431, "header line too long"};
    if (line.bare_lf && !allow_lf) return kBareLF;
    if (text.empty()) return ParseError{400, "bare CR in header"};
    pos = line.next;
    if (is_ows(text.front())) {
      if (!limits.unfold_obs_fold) {
        return ParseError{400, out.size() == first ? "whitespace before first header"
                                                   : "obsolete line folding"};
      }
      auto folded = extend_folded_value(out, first, text);
      if (!folded) return folded;
      continue;
    }
    std::size_t colon = 0;
    while (colon < text.size() && is_tchar(text[colon])) ++colon;
    if (colon == 0 || colon == text.size() || text[colon] != ':') {
      colon = text.find(':');
      if (colon == std::string_view::npos) return ParseError{400, "no colon in header line"};
      return field_name_error(text.substr(0, colon));
    }
    const std::string_view name = text.substr(0, colon);
    const std::string_view value = trim_ows(text.substr(colon + 1));
    if (!field_bytes_valid(value.data(), value.size())) {
      return ParseError{400, "invalid character in header value"};
    }
    if (out.size() - first >= limits.max_fields) return ParseError{431, "too many headers"};
    if (check_lookalikes && is_framing_lookalike(name)) return ParseError{400, "header name resembles a framing field"};
    out.push_back({name, value});
  }
  return {};
}

ParseResult<std::vector<HeaderField>> parse_header_block(std::string_view block,
                                                         const HeadLimits& limits) {
  std::vector<HeaderField> fields;
  fields.reserve(16);
  auto status = parse_header_block(block, fields, limits);
  if (!status) return status.error();
  return fields;
}

ParseResult<HTTPHeaders> parse_headers(std::string_view block, const HeadLimits& limits) {
  auto fields = parse_header_block(block, limits);
  if (!fields) return fields.error();
  return headers_from(*fields, limits.unfold_obs_fold);
}

std::string unfold_field_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  std::size_t pos = 0;
  while (pos <= value.size()) {
    std::size_t nl = value.find('\n', pos);
    if (nl == std::string_view::npos) nl = value.size();
    std::string_view piece = value.substr(pos, nl - pos);
    if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
    piece = trim_ows(piece);
    if (!piece.empty()) {
      if (!out.empty()) out.push_back(' ');
      out.append(piece);
    }
    pos = nl + 1;
  }
  return out;
}

// ---- heads ------------------------------------------------------------------------------

SQUALL_HOT
ParseResult<RequestLine> parse_request_head(std::string_view head, std::vector<HeaderField>& fields,
                                            const HeadLimits& limits) {
  fields.clear();
  const bool allow_lf = limits.policy.allow_bare_lf;
  const std::size_t start = skip_blank_lines(head, allow_lf);
  if (start == head.size()) return ParseError{400, "no request line"};
  if (head[start] == '\n') return kBareLF;
  RequestLine start_line;
  const char* const end = head.data() + head.size();
  std::size_t block_start = 0;
  if (const char* next = accept_request_line(head.data() + start, end, limits.max_start_line, limits.policy,
                                             start_line)) {
    block_start = static_cast<std::size_t>(next - head.data());
  } else {  // the definition finds the error, or accepts what the fast path leaves to it
    const Line line = next_line(head, start);
    auto parsed = parse_request_line(line.content, limits);
    if (!parsed) return parsed.error();
    if (line.bare_lf && !allow_lf) return kBareLF;
    start_line = *parsed;
    block_start = line.next;
  }
  auto status = parse_header_block(head.substr(block_start), fields, limits);
  if (!status) {
    fields.clear();
    return status.error();
  }
  return start_line;
}

ParseResult<RequestHead> parse_request_head(std::string_view head, const HeadLimits& limits) {
  RequestHead out;
  out.headers.reserve(16);
  auto start_line = parse_request_head(head, out.headers, limits);
  if (!start_line) return start_line.error();
  out.start_line = *start_line;
  return out;
}

ParseResult<ResponseHead> parse_response_head(std::string_view head, HeadLimits limits) {
  limits.policy.allow_bare_lf = true;
  limits.policy.allow_framing_lookalikes = true;
  const std::size_t start = skip_blank_lines(head, /*allow_lf=*/true);
  if (start == head.size()) return ParseError{400, "no status line"};
  const Line line = next_line(head, start);
  if (line.content.size() > limits.max_start_line) return ParseError{400, "status line too long"};
  auto start_line = parse_response_line(line.content);
  if (!start_line) return start_line.error();
  limits.unfold_obs_fold = true;
  std::vector<HeaderField> fields;
  fields.reserve(16);
  auto status = parse_header_block(head.substr(line.next), fields, limits);
  if (!status) return status.error();
  return ResponseHead{*start_line, headers_from(fields, /*unfold=*/true)};
}

// ---- body framing ---------------------------------------------------------------------

bool is_framing_lookalike(std::string_view name) noexcept {
  // Anything that is not a candidate is decided by its length and first byte.
  if (name.size() < kShortestLookalike) return false;
  std::size_t lead = 0;  // punctuation before the first letter
  while (lead < name.size() && !has_class(name[lead], kHexDigit) &&
         !((name[lead] | 0x20) >= 'a' && (name[lead] | 0x20) <= 'z')) {
    ++lead;
  }
  if (lead == name.size()) return false;
  const char c0 = static_cast<char>(name[lead] | 0x20);
  if (c0 != 'c' && c0 != 't') return false;
  const std::string_view canonical = c0 == 'c' ? "Content-Length" : "Transfer-Encoding";
  const std::string_view letters = c0 == 'c' ? "contentlength" : "transferencoding";
  if (header_name_equals(name, canonical)) return false;
  std::size_t i = 0;
  for (char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum) continue;  // punctuation
    if (i >= letters.size() || static_cast<char>(c | 0x20) != letters[i]) return false;
    ++i;
  }
  return i == letters.size();
}

ParseResult<std::uint64_t> parse_content_length(std::string_view value, const ParsePolicy& policy) {
  constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  // The usual value, one 1*DIGIT that fits, has this verdict under either policy; anything
  // else (a list, OWS, a non-digit, an overflow) takes the definition below.
  if (!value.empty() && value.size() <= std::numeric_limits<std::int64_t>::digits10) {
    std::uint64_t n = 0;
    bool digits = true;
    for (char c : value) {
      digits &= is_digit(c);
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (digits) return n;
  }
  if (!policy.allow_lenient_content_length) {
    if (value.empty()) return ParseError{400, "empty Content-Length"};
    if (value.find(',') != std::string_view::npos) return ParseError{400, "Content-Length is a list"};
  }
  std::string_view first;
  std::optional<ParseError> bad;
  for_each_list_element(value, [&](std::string_view element) {
    if (element.empty()) {
      bad = ParseError{400, "empty Content-Length"};
    } else if (!std::all_of(element.begin(), element.end(), is_digit)) {
      bad = ParseError{400, "non-numeric Content-Length"};
    } else if (first.empty()) {
      first = element;
    } else if (element != first) {
      bad = ParseError{400, "multiple differing Content-Length values"};
    }
    return !bad;
  });
  if (bad) return *bad;

  std::uint64_t n = 0;
  for (char c : first) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (n > (kMax - digit) / 10) return ParseError{400, "Content-Length too large"};
    n = n * 10 + digit;
  }
  return n;
}

ParseResult<TransferEncoding> parse_transfer_encoding(std::string_view value, const ParsePolicy& policy) {
  const bool lenient = policy.allow_lenient_transfer_encoding;
  TransferEncoding out;
  std::size_t codings = 0;
  std::size_t pos = 0;
  bool after_comma = false;
  while (pos < value.size()) {
    pos = skip_ows(value, pos);
    if (pos < value.size() && value[pos] == ',') {  // empty list element
      if (!lenient) return ParseError{400, "empty element in Transfer-Encoding"};
      ++pos;
      continue;
    }
    if (pos >= value.size()) break;
    const std::size_t name_end = skip_token(value, pos);
    if (name_end == pos) return ParseError{400, "malformed Transfer-Encoding"};
    if (out.chunked) return ParseError{400, "chunked is not the final transfer coding"};
    out.chunked = header_name_equals(value.substr(pos, name_end - pos), "chunked");
    if (!out.chunked) ++out.other_codings;
    ++codings;
    pos = skip_ows(value, name_end);
    if (out.chunked && !lenient && pos < value.size() && value[pos] == ';') {
      return ParseError{400, "parameters on chunked"};
    }
    while (pos < value.size() && value[pos] == ';') {
      pos = skip_parameter(value, skip_ows(value, pos + 1));
      if (pos == std::string_view::npos) return ParseError{400, "malformed Transfer-Encoding"};
      pos = skip_ows(value, pos);
    }
    if (pos < value.size() && value[pos] != ',') {
      return ParseError{400, "malformed Transfer-Encoding"};
    }
    if (pos < value.size()) {  // the comma ending this element
      ++pos;
      after_comma = true;
    }
  }
  if (codings == 0) return ParseError{400, "empty Transfer-Encoding"};
  if (after_comma && !lenient && trim_ows(value).back() == ',') {
    return ParseError{400, "empty element in Transfer-Encoding"};
  }
  return out;
}

ParseResult<std::uint64_t> parse_chunk_size_line(std::string_view line, const ChunkLimits& limits) {
  if (line.ends_with("\r\n")) {
    line.remove_suffix(2);
  } else if (limits.allow_bare_lf && line.ends_with('\n')) {
    line.remove_suffix(1);
  }
  std::uint64_t size = 0;
  std::size_t pos = 0;
  for (; pos < line.size() && has_class(line[pos], kHexDigit); ++pos) {
    const char c = line[pos];
    const std::uint64_t digit = is_digit(c) ? static_cast<std::uint64_t>(c - '0')
                                            : static_cast<std::uint64_t>((c | 0x20) - 'a' + 10);
    if (digit > limits.max_size || size > (limits.max_size - digit) / 16) return ParseError{413, "chunk too large"};
    size = size * 16 + digit;
  }
  if (pos == 0) return ParseError{400, "missing chunk size"};
  const std::string_view extensions = line.substr(pos);
  if (extensions.size() > limits.max_extensions) return ParseError{400, "chunk extensions too long"};
  // *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
  pos = 0;
  while (pos < extensions.size()) {
    pos = skip_ows(extensions, pos);
    if (pos >= extensions.size() || extensions[pos] != ';') {
      return ParseError{400, "malformed chunk size line"};
    }
    pos = skip_parameter(extensions, skip_ows(extensions, pos + 1));
    if (pos == std::string_view::npos) return ParseError{400, "malformed chunk extension"};
  }
  return size;
}

SQUALL_HOT
std::size_t crlf_head_end(std::string_view buffered) noexcept {
#if defined(__SSE2__)
  return crlf_head_end_with<block_line_end_bits_sse2, tail_line_end_bits_sse2>(buffered);
#else
  return crlf_head_end_with<block_line_end_bits_portable, tail_line_end_bits_portable>(buffered);
#endif
}

// The tests' and fuzzers' way to both variants: not among the hot functions.
std::size_t detail::crlf_head_end(std::string_view buffered, bool portable) noexcept {
  return portable ? crlf_head_end_with<block_line_end_bits_portable, tail_line_end_bits_portable>(buffered)
                  : squall::crlf_head_end(buffered);
}

const char* detail::scan(ScanClass cls, const char* p, const char* end, bool portable) noexcept {
  switch (cls) {
    case ScanClass::token:
      return portable ? token_end_portable(p, end) : token_end(p, end);
    case ScanClass::field_value:
      return portable ? field_end_portable(p, end) : field_end(p, end);
    case ScanClass::target:
      return portable ? target_end_portable(p, end) : target_end(p, end);
    case ScanClass::plain_target:
      return portable ? plain_target_end_portable(p, end) : plain_target_end(p, end);
  }
  return p;
}

}  // namespace squall
