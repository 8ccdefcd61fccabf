// HTTPHeaders: the header fields of one HTTP message (Tornado's `httputil.HTTPHeaders`).
//
// What it is for: every layer above the parser (connection, server, router, handler,
// client) reads and writes header fields through this one type. It is a case-insensitive
// multi-map that keeps insertion order and each field line's name exactly as received,
// so that `/echo` can answer the headers "as received" and `Set-Cookie` can be sent
// several times. Tornado's dictionary view is kept: `get` joins repeated fields with ","
// (RFC 9110 §5.3), `get_list` returns every value.
//
// Why it looks like this: it is built once per request on the hot path, so it is one
// contiguous byte arena plus a small vector of offsets (two allocations per message, not
// two per field) and lookups are linear ASCII case-insensitive scans, which beat a map
// for the usual 5-30 fields. Views returned by the accessors point into the arena and
// stay valid until the next mutation. Lines added one by one are kept in the arena as
// they go on the wire ("name: value\r\n"), so a response head is written as one copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "squall/detail/small_pool.h"

namespace squall {

// One field line: a name and a value, both views into someone else's bytes.
struct HeaderField {
  std::string_view name;
  std::string_view value;
  friend bool operator==(const HeaderField&, const HeaderField&) = default;
};

// ASCII case-insensitive equality of two field names.
bool header_name_equals(std::string_view a, std::string_view b) noexcept;

// header_name_equals(name, lower) for `lower`, a lower-case name of letters and '-' of
// the same length as `name` (else false): each letter compared with its case bit set
// (only 'X' and 'x' become 'x'), '-' as it is. Inlined and unrolled for the literal, it
// costs a few instructions a byte where header_name_equals is a call with a loop: the
// request and response heads are scanned for a few such names on every request.
template <std::size_t N>
bool header_name_is(std::string_view name, const char (&lower)[N]) noexcept {
  if (name.size() != N - 1) return false;
  for (std::size_t i = 0; i + 1 < N; ++i) {
    const char got = lower[i] == '-' ? name[i] : static_cast<char>(name[i] | 0x20);
    if (got != lower[i]) return false;
  }
  return true;
}

// Tornado's display form of a field name: "coNtent-TYPE" -> "Content-Type".
std::string normalize_name(std::string_view name);

// What a response's framing lines say, as whoever built the set knows it (the web
// layer: it set them): the body's length if a Content-Length line states it, whether a
// Transfer-Encoding line is there, and whether Date and Server are (the connection adds
// them if not). HTTP1Connection::write_headers then need not scan the lines for them nor
// parse the length again.
struct FramingLines {
  std::uint64_t content_length = 0;  // the one Content-Length line's value (if has_content_length)
  bool has_content_length = false;
  bool transfer_encoding = false;
  bool date = false;
  bool server = false;
  friend bool operator==(const FramingLines&, const FramingLines&) = default;
};

class HTTPHeaders {
 public:
  class const_iterator;

  HTTPHeaders() = default;
  HTTPHeaders(std::initializer_list<HeaderField> fields);
  // Builds the headers from parsed field lines with exactly two allocations.
  static HTTPHeaders from_fields(std::span<const HeaderField> fields);

  // Appends a field line; earlier lines with the same name are kept.
  void add(std::string_view name, std::string_view value);
  // Replaces every line named `name` by one line, kept at the position of the first
  // such line (like assigning to an existing key of a Python dict); appends if absent.
  void set(std::string_view name, std::string_view value);
  // Removes every line named `name`; returns how many were removed.
  std::size_t remove(std::string_view name);
  void clear() noexcept;
  void reserve(std::size_t fields, std::size_t bytes);
  // Becomes a copy of `from` (its lines, marks and note) with room for `fields` lines
  // and `bytes` bytes of them in all: one allocation for each at most and one block
  // copied for each, where reserve() and an assignment check and copy twice (a
  // response's default lines, copied for every response).
  void assign(const HTTPHeaders& from, std::size_t fields, std::size_t bytes);

  bool contains(std::string_view name) const noexcept;
  std::size_t count(std::string_view name) const noexcept;
  // Index of the first line named `name` at or after `from`; size() when there is none.
  std::size_t find(std::string_view name, std::size_t from = 0) const noexcept;
  // First value of `name`, zero-copy.
  std::optional<std::string_view> get_first(std::string_view name) const noexcept;
  // Tornado's `headers[name]`: all values of `name` joined with ",".
  std::optional<std::string> get(std::string_view name) const;
  // Tornado's `headers.get(name, default)`.
  std::string get(std::string_view name, std::string_view default_value) const;
  // Tornado's `get_list`: every value of `name`, in order.
  std::vector<std::string_view> get_list(std::string_view name) const;

  // The owner's word that every field line was checked as it was stored (a token name,
  // a value without control characters), so a writer need not scan them again
  // (HTTP1Connection::write_headers; the web layer checks each header it sets). Storing
  // a line afterwards, by any route, withdraws it.
  void mark_fields_checked() noexcept { fields_checked_ = true; }
  bool fields_checked() const noexcept { return fields_checked_; }

  // The owner's word on what the framing lines say (FramingLines), which a writer takes
  // instead of reading the lines. Storing or removing a line afterwards, by any route,
  // withdraws it; nullptr when there is none.
  void note_framing(const FramingLines& framing) noexcept {
    framing_ = framing;
    framing_noted_ = true;
  }
  const FramingLines* noted_framing() const noexcept { return framing_noted_ ? &framing_ : nullptr; }

  // The field lines as a writer sends them — "name: value\r\n" each, in order — when
  // the set holds them so: every set built by add(), set() and remove() does (not one
  // made from_fields, nor one whose repeated lines set() merged). A response head is then
  // copied as one block instead of four pieces per line. nullopt otherwise.
  std::optional<std::string_view> wire_lines() const noexcept {
    if (!wire_form_) return std::nullopt;
    return std::string_view(arena_.data(), arena_.size());
  }

  // Number of field lines (Tornado's len() counts distinct names instead).
  std::size_t size() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return slots_.empty(); }
  HeaderField operator[](std::size_t index) const noexcept { return field(slots_[index]); }
  const_iterator begin() const noexcept;
  const_iterator end() const noexcept;

 private:
  struct Slot {
    std::uint32_t name_offset;
    std::uint32_t name_size;
    std::uint32_t value_offset;
    std::uint32_t value_size;
  };

  // Slots always lie inside the arena: no bounds checks on these paths, which every
  // lookup takes once per line.
  HeaderField field(const Slot& slot) const noexcept {
    return {std::string_view(arena_.data() + slot.name_offset, slot.name_size),
            std::string_view(arena_.data() + slot.value_offset, slot.value_size)};
  }
  // Whether the slot's line is named `name`; lines of another length are passed over
  // without a call.
  // The first bytes are compared with the ASCII case bit ignored first: most lines of the
  // same length differ there ("Date" and "Vary"). A byte that only looks equal this way
  // ('^' and '~') is settled by the full comparison: by the word for names of eight
  // bytes or more (a name that matches is compared whole: "Content-Type" in two steps
  // instead of twelve), else byte by byte. Defined (inline) in http_headers.cc, its only user.
  bool named(const Slot& slot, std::string_view name) const noexcept;
  // header_name_equals of two names of n bytes, byte by byte: small enough to be inlined
  // into every lookup without making it save registers (header_name_equals compares
  // long names by the word, out of line).
  static bool same_name_bytes(const char* a, const char* b, std::size_t n) noexcept;
  friend bool header_name_equals(std::string_view a, std::string_view b) noexcept;
  // Appends "name: value\r\n" to the arena; the slot of that line.
  Slot store(std::string_view name, std::string_view value);
  // store() of a name or value that is a view into the arena (out of line: rare, and
  // store() is then not recursive, so it is inlined into add()).
  Slot store_copies(std::string_view name, std::string_view value);
  // set()'s common case: the line at `index` is the only one named `name`, spelled the
  // same. Only its value changes: overwritten where the old one was when it fits (no
  // bytes appended), else appended to the arena with the line pointed at it (no other
  // line moved). False (nothing changed) otherwise.
  bool rewrite_in_place(std::size_t index, std::string_view name, std::string_view value);
  // Gives the line at `index` a value of another size where it stands, the lines after it
  // moved along (the arena in wire form; `value` not a view into it).
  void resize_value_in_place(std::size_t index, std::string_view value);
  // remove() on an arena in wire form: the lines kept are moved together, in order.
  std::size_t remove_keeping_wire_form(std::string_view name);
  void forget(const Slot& slot) noexcept { garbage_ += slot.name_size + slot.value_size; }
  void compact_if_wasteful();

  // The bytes of every name and value, back to back, in a block from the per-thread pool
  // (small_pool.h): a request and its response each carry a set of headers, made and
  // dropped per request. A field line is appended with one capacity check and two
  // copies (std::string's append checks and terminates per call).
  class Arena {
   public:
    Arena() = default;
    Arena(const Arena& other) { *this = other; }
    Arena& operator=(const Arena& other);
    Arena(Arena&& other) noexcept { swap(other); }
    Arena& operator=(Arena&& other) noexcept {
      Arena gone(std::move(*this));  // leaves *this empty; frees the old bytes on return
      swap(other);
      return *this;
    }
    ~Arena();
    const char* data() const noexcept { return data_; }
    char* data() noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    void clear() noexcept { size_ = 0; }
    void reserve(std::size_t bytes);
    // Becomes a copy of `other`'s bytes, with room for `room` bytes at least.
    void copy_from(const Arena& other, std::size_t room);
    // Appends a then b (neither may point into this arena).
    void append(std::string_view a, std::string_view b);
    // Appends the field line "name: value\r\n" (neither may point into this arena).
    void append_line(std::string_view name, std::string_view value);
    // Moves the bytes from `from` to the end by `delta` (room made or bytes dropped
    // before them) and the size with them.
    void shift_tail(std::size_t from, std::ptrdiff_t delta);
    void swap(Arena& other) noexcept;

   private:
    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
  };
  Arena arena_;                                             // names and values, back to back
  std::vector<Slot, detail::PoolAllocator<Slot>> slots_;  // one per field line, in order
  std::size_t garbage_ = 0;  // arena bytes no slot refers to any more
  FramingLines framing_;  // valid while framing_noted_
  bool fields_checked_ = false;
  bool framing_noted_ = false;
  // The arena is exactly the lines in wire form, in the slots' order (wire_lines()).
  bool wire_form_ = true;
};

// Iterates over all field lines in order as HeaderField values.
class HTTPHeaders::const_iterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = HeaderField;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = HeaderField;

  const_iterator() = default;
  HeaderField operator*() const noexcept { return (*headers_)[index_]; }
  const_iterator& operator++() noexcept {
    ++index_;
    return *this;
  }
  const_iterator operator++(int) noexcept {
    const_iterator before = *this;
    ++index_;
    return before;
  }
  friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
    return a.index_ == b.index_;
  }

 private:
  friend class HTTPHeaders;
  const_iterator(const HTTPHeaders* headers, std::size_t index) noexcept
      : headers_(headers), index_(index) {}
  const HTTPHeaders* headers_ = nullptr;
  std::size_t index_ = 0;
};

inline HTTPHeaders::const_iterator HTTPHeaders::begin() const noexcept { return {this, 0}; }
inline HTTPHeaders::const_iterator HTTPHeaders::end() const noexcept {
  return {this, slots_.size()};
}

}  // namespace squall
