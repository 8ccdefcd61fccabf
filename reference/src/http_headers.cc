#include "squall/http_headers.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "squall/detail/hot_path.h"

namespace squall {

namespace {

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr char ascii_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// The arena is addressed with 32-bit offsets; header blocks are bounded far below that.
constexpr std::size_t kMaxArena = std::numeric_limits<std::uint32_t>::max();

// Compact once dead bytes exceed both this floor and the live bytes.
constexpr std::size_t kCompactFloor = 4096;

// One unsigned comparison: an address below the buffer's wraps around to a large offset.
bool points_into(std::string_view buffer, std::string_view view) noexcept {
  const auto offset = reinterpret_cast<std::uintptr_t>(view.data()) - reinterpret_cast<std::uintptr_t>(buffer.data());
  return !view.empty() && offset < buffer.size();
}

}  // namespace

namespace {

// Eight bytes with 'A'-'Z' turned to lower case, every other byte (also those from 0x80 on)
// left alone. Per byte, with the top bit set aside so no sum carries into the next byte:
// at least 'A' and not above 'Z', and the byte's own top bit clear.
std::uint64_t ascii_lower8(std::uint64_t w) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  const std::uint64_t low7 = w & ~kHighs;
  const std::uint64_t at_least_a = low7 + kOnes * (0x80 - 'A');
  const std::uint64_t above_z = low7 + kOnes * (0x80 - 'Z' - 1);
  const std::uint64_t upper = at_least_a & ~above_z & ~w & kHighs;
  return w | (upper >> 2);  // 0x80 >> 2 == 0x20, the case bit
}

std::uint64_t load8(const char* at) noexcept {
  std::uint64_t w;
  std::memcpy(&w, at, 8);
  return w;
}

}  // namespace

namespace {

// header_name_equals for names of eight bytes or more: eight bytes per step (most such
// names are 8-20 bytes long: two or three steps instead of a dozen and more), the tail
// as the word that ends the name, overlapping bytes already compared, which changes
// nothing.
SQUALL_HOT
bool long_header_names_equal(const char* a, const char* b, std::size_t n) noexcept {
  auto words_equal = [](const char* x, const char* y) {
    const std::uint64_t u = load8(x), v = load8(y);
    return u == v || ascii_lower8(u) == ascii_lower8(v);
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (!words_equal(a + i, b + i)) return false;
  }
  return i == n || words_equal(a + n - 8, b + n - 8);
}

}  // namespace

bool HTTPHeaders::same_name_bytes(const char* a, const char* b, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i] && ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

inline bool HTTPHeaders::named(const Slot& slot, std::string_view name) const noexcept {
  const std::size_t n = name.size();
  if (slot.name_size != n) return false;
  if (n == 0) return true;
  const char* stored = arena_.data() + slot.name_offset;
  if (((stored[0] ^ name[0]) & ~0x20) != 0) return false;
  return n >= 8 ? long_header_names_equal(stored, name.data(), n) : same_name_bytes(stored, name.data(), n);
}

SQUALL_HOT
bool header_name_equals(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n >= 8) return long_header_names_equal(a.data(), b.data(), n);
  return HTTPHeaders::same_name_bytes(a.data(), b.data(), n);
}

std::string normalize_name(std::string_view name) {
  std::string out(name);
  bool word_start = true;
  for (char& c : out) {
    c = word_start ? ascii_upper(c) : ascii_lower(c);
    word_start = (c == '-');
  }
  return out;
}

HTTPHeaders::HTTPHeaders(std::initializer_list<HeaderField> fields) {
  std::size_t bytes = 0;
  for (const HeaderField& f : fields) bytes += f.name.size() + f.value.size();
  reserve(fields.size(), bytes);
  for (const HeaderField& f : fields) add(f.name, f.value);
}

// ---- the arena

HTTPHeaders::Arena& HTTPHeaders::Arena::operator=(const Arena& other) {
  if (this != &other) copy_from(other, other.size_);
  return *this;
}

void HTTPHeaders::Arena::copy_from(const Arena& other, std::size_t room) {
  size_ = 0;
  reserve(std::max(room, other.size_));
  if (other.size_ > 0) std::memcpy(data_, other.data_, other.size_);
  size_ = other.size_;
}

SQUALL_HOT
HTTPHeaders::Arena::~Arena() {
  if (data_ != nullptr) detail::pool_deallocate(data_, capacity_);
}

SQUALL_HOT
void HTTPHeaders::Arena::reserve(std::size_t bytes) {
  if (bytes <= capacity_) return;
  char* grown = static_cast<char*>(detail::pool_allocate(bytes));
  if (size_ > 0) std::memcpy(grown, data_, size_);
  if (data_ != nullptr) detail::pool_deallocate(data_, capacity_);
  data_ = grown;
  capacity_ = bytes;
}

namespace {

// Copies n bytes; those of a name or value (4-16 bytes, mostly) as two fixed-size copies
// that overlap, which the compiler does inline: a call to memcpy costs more than the
// copy itself. memcpy with a null source is undefined even for zero bytes: an empty view
// may have one, so n == 0 copies nothing.
void copy_field_bytes(char* to, const char* from, std::size_t n) noexcept {
  if (n >= 8 && n <= 16) {
    std::memcpy(to, from, 8);
    std::memcpy(to + n - 8, from + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(to, from, 4);
    std::memcpy(to + n - 4, from + n - 4, 4);
  } else if (n > 0) {
    std::memcpy(to, from, n);
  }
}

}  // namespace

SQUALL_HOT
void HTTPHeaders::Arena::append(std::string_view a, std::string_view b) {
  const std::size_t needed = size_ + a.size() + b.size();
  if (needed > capacity_) reserve(std::max(needed, 2 * capacity_));
  copy_field_bytes(data_ + size_, a.data(), a.size());
  copy_field_bytes(data_ + size_ + a.size(), b.data(), b.size());
  size_ = needed;
}

// Inline (as store()): a line is appended for nearly every header a response gets, and
// the calls cost more than the copies.
inline void HTTPHeaders::Arena::append_line(std::string_view name, std::string_view value) {
  const std::size_t needed = size_ + name.size() + value.size() + 4;
  if (needed > capacity_) reserve(std::max(needed, 2 * capacity_));
  char* at = data_ + size_;
  copy_field_bytes(at, name.data(), name.size());
  at += name.size();
  std::memcpy(at, ": ", 2);
  copy_field_bytes(at + 2, value.data(), value.size());
  std::memcpy(at + 2 + value.size(), "\r\n", 2);
  size_ = needed;
}

inline void HTTPHeaders::Arena::shift_tail(std::size_t from, std::ptrdiff_t delta) {
  const std::size_t resized = size_ + static_cast<std::size_t>(delta);
  if (resized > capacity_) reserve(std::max(resized, 2 * capacity_));
  std::memmove(data_ + from + delta, data_ + from, size_ - from);
  size_ = resized;
}

SQUALL_HOT
void HTTPHeaders::Arena::swap(Arena& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  std::swap(capacity_, other.capacity_);
}

// ---- HTTPHeaders

SQUALL_HOT
HTTPHeaders HTTPHeaders::from_fields(std::span<const HeaderField> fields) {
  HTTPHeaders headers;
  std::size_t bytes = 0;
  // The span of memory the fields' bytes lie in (empty views are left out: they may
  // point anywhere).
  std::uintptr_t low = std::numeric_limits<std::uintptr_t>::max(), high = 0;
  for (const HeaderField& f : fields) {
    bytes += f.name.size() + f.value.size();
    for (std::string_view part : {f.name, f.value}) {
      if (part.empty()) continue;
      low = std::min(low, reinterpret_cast<std::uintptr_t>(part.data()));
      high = std::max(high, reinterpret_cast<std::uintptr_t>(part.data() + part.size()));
    }
  }
  // Fields parsed from one head lie in it, a few separator bytes apart: the whole block is
  // copied at once and the lines point into the copy (one copy instead of one per line).
  const std::size_t separators = 8 * fields.size() + 64;
  if (high > low && high - low <= bytes + separators && high - low <= kMaxArena) {
    const char* block = reinterpret_cast<const char*>(low);
    headers.slots_.reserve(fields.size());
    headers.arena_.append(std::string_view(block, high - low), {});
    for (const HeaderField& f : fields) {
      auto offset = [block](std::string_view part) {
        return part.empty() ? 0u : static_cast<std::uint32_t>(part.data() - block);
      };
      headers.slots_.push_back(Slot{offset(f.name), static_cast<std::uint32_t>(f.name.size()), offset(f.value),
                                    static_cast<std::uint32_t>(f.value.size())});
    }
    headers.garbage_ = (high - low) - bytes;  // the separators
    headers.wire_form_ = false;               // the head's own separators, as received
    return headers;
  }
  headers.reserve(fields.size(), bytes);
  for (const HeaderField& f : fields) headers.add(f.name, f.value);
  return headers;
}

void HTTPHeaders::reserve(std::size_t fields, std::size_t bytes) {
  slots_.reserve(fields);
  arena_.reserve(bytes);
}

SQUALL_HOT
void HTTPHeaders::assign(const HTTPHeaders& from, std::size_t fields, std::size_t bytes) {
  if (this == &from) return;
  arena_.copy_from(from.arena_, bytes);
  slots_.clear();
  slots_.reserve(std::max(fields, from.slots_.size()));
  slots_.insert(slots_.end(), from.slots_.begin(), from.slots_.end());
  garbage_ = from.garbage_;
  framing_ = from.framing_;
  fields_checked_ = from.fields_checked_;
  framing_noted_ = from.framing_noted_;
  wire_form_ = from.wire_form_;
}

inline HTTPHeaders::Slot HTTPHeaders::store(std::string_view name, std::string_view value) {
  fields_checked_ = false;  // whoever adds a line vouches for it again (mark_fields_checked)
  framing_noted_ = false;   // and tells again what the framing lines say (note_framing)
  const std::string_view stored(arena_.data(), arena_.size());
  if (points_into(stored, name) || points_into(stored, value)) return store_copies(name, value);
  if (name.size() + value.size() + 4 > kMaxArena - arena_.size()) {
    throw std::length_error("HTTPHeaders: header data too large");
  }
  Slot slot{};
  slot.name_offset = static_cast<std::uint32_t>(arena_.size());
  slot.name_size = static_cast<std::uint32_t>(name.size());
  slot.value_offset = static_cast<std::uint32_t>(arena_.size() + name.size() + 2);
  slot.value_size = static_cast<std::uint32_t>(value.size());
  arena_.append_line(name, value);
  return slot;
}

HTTPHeaders::Slot HTTPHeaders::store_copies(std::string_view name, std::string_view value) {
  // Appending may reallocate the arena under the views: copy them out first.
  const std::string name_copy(name), value_copy(value);
  return store(name_copy, value_copy);
}

SQUALL_HOT
void HTTPHeaders::add(std::string_view name, std::string_view value) {
  slots_.push_back(store(name, value));
}

// set()'s helpers, inline in it: a handler's set_header("Content-Type", ...) takes this
// path for nearly every response.
inline void HTTPHeaders::resize_value_in_place(std::size_t index, std::string_view value) {
  Slot& slot = slots_[index];
  const auto delta = static_cast<std::ptrdiff_t>(value.size()) - static_cast<std::ptrdiff_t>(slot.value_size);
  if (delta > 0 && static_cast<std::size_t>(delta) > kMaxArena - arena_.size()) {
    throw std::length_error("HTTPHeaders: header data too large");
  }
  arena_.shift_tail(slot.value_offset + slot.value_size, delta);
  copy_field_bytes(arena_.data() + slot.value_offset, value.data(), value.size());
  slot.value_size = static_cast<std::uint32_t>(value.size());
  // In wire form the lines after this one are the bytes after it.
  for (std::size_t i = index + 1; i < slots_.size(); ++i) {
    slots_[i].name_offset = static_cast<std::uint32_t>(slots_[i].name_offset + delta);
    slots_[i].value_offset = static_cast<std::uint32_t>(slots_[i].value_offset + delta);
  }
}

inline bool HTTPHeaders::rewrite_in_place(std::size_t index, std::string_view name, std::string_view value) {
  if (name != field(slots_[index]).name) return false;
  for (std::size_t i = index + 1; i < slots_.size(); ++i) {
    if (named(slots_[i], name)) return false;
  }
  fields_checked_ = false;  // as for any line stored
  framing_noted_ = false;
  Slot& slot = slots_[index];
  if (wire_form_ && value.size() != slot.value_size) {
    if (points_into(std::string_view(arena_.data(), arena_.size()), value)) {
      resize_value_in_place(index, std::string(value));  // the arena's bytes move under the view
    } else {
      resize_value_in_place(index, value);
    }
    return true;
  }
  if (value.size() <= slot.value_size) {
    // memmove: the value may be a view into the arena itself (an empty one may have no
    // bytes at all: a null pointer, which memmove must not get).
    if (!value.empty()) std::memmove(arena_.data() + slot.value_offset, value.data(), value.size());
    garbage_ += slot.value_size - value.size();
    slot.value_size = static_cast<std::uint32_t>(value.size());
    return true;
  }
  // store() copies a value that is a view into the arena before the arena may move.
  const Slot appended = store({}, value);
  garbage_ += slot.value_size;
  slot.value_offset = appended.value_offset;
  slot.value_size = appended.value_size;
  compact_if_wasteful();
  return true;
}

SQUALL_HOT
void HTTPHeaders::set(std::string_view name, std::string_view value) {
  std::size_t first = 0;
  while (first < slots_.size() && !named(slots_[first], name)) ++first;
  if (first == slots_.size()) {
    add(name, value);
    return;
  }
  if (rewrite_in_place(first, name, value)) return;
  wire_form_ = false;  // the merged line is appended to the arena but stands first
  std::size_t kept = 0;
  bool found = false;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!named(slots_[i], name)) {
      slots_[kept++] = slots_[i];
    } else if (!found) {
      found = true;
      forget(slots_[i]);
      // `name`/`value` may point into the arena: store() copies before anything moves.
      slots_[kept++] = store(name, value);
    } else {
      forget(slots_[i]);
    }
  }
  slots_.resize(kept);
  if (!found) add(name, value);
  compact_if_wasteful();
}


std::size_t HTTPHeaders::remove_keeping_wire_form(std::string_view name) {
  std::size_t kept = 0;
  std::size_t end = 0;  // where the next kept line goes
  const std::size_t before = slots_.size();
  for (std::size_t i = 0; i < before; ++i) {
    Slot slot = slots_[i];
    if (named(slot, name)) continue;
    const std::size_t line = slot.name_size + 2 + slot.value_size + 2;
    if (end != slot.name_offset) {
      std::memmove(arena_.data() + end, arena_.data() + slot.name_offset, line);
      slot.value_offset = static_cast<std::uint32_t>(end + slot.name_size + 2);
      slot.name_offset = static_cast<std::uint32_t>(end);
    }
    slots_[kept++] = slot;
    end += line;
  }
  if (kept == before) return 0;
  arena_.shift_tail(arena_.size(), static_cast<std::ptrdiff_t>(end) - static_cast<std::ptrdiff_t>(arena_.size()));
  slots_.resize(kept);
  return before - kept;
}

std::size_t HTTPHeaders::remove(std::string_view name) {
  framing_noted_ = false;  // the line removed may be one the note told of
  if (wire_form_) return remove_keeping_wire_form(name);
  std::size_t kept = 0;
  const std::size_t before = slots_.size();
  for (std::size_t i = 0; i < before; ++i) {
    if (named(slots_[i], name)) {
      forget(slots_[i]);
    } else {
      slots_[kept++] = slots_[i];
    }
  }
  slots_.resize(kept);
  compact_if_wasteful();
  return before - kept;
}

SQUALL_HOT
void HTTPHeaders::clear() noexcept {
  arena_.clear();
  slots_.clear();
  garbage_ = 0;
  fields_checked_ = false;
  framing_noted_ = false;
  wire_form_ = true;
}

void HTTPHeaders::compact_if_wasteful() {
  const std::size_t live = arena_.size() - garbage_;
  if (garbage_ < kCompactFloor || garbage_ < live) return;
  Arena fresh;
  fresh.reserve(live);
  for (Slot& slot : slots_) {
    HeaderField f = field(slot);
    slot.name_offset = static_cast<std::uint32_t>(fresh.size());
    slot.value_offset = static_cast<std::uint32_t>(fresh.size() + f.name.size() + 2);
    fresh.append_line(f.name, f.value);
  }
  arena_.swap(fresh);
  garbage_ = 0;
  wire_form_ = true;
}

SQUALL_HOT
bool HTTPHeaders::contains(std::string_view name) const noexcept {
  return get_first(name).has_value();
}

std::size_t HTTPHeaders::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const Slot& slot : slots_) n += named(slot, name);
  return n;
}

SQUALL_HOT
std::size_t HTTPHeaders::find(std::string_view name, std::size_t from) const noexcept {
  while (from < slots_.size() && !named(slots_[from], name)) ++from;
  return std::min(from, slots_.size());
}

SQUALL_HOT
std::optional<std::string_view> HTTPHeaders::get_first(std::string_view name) const noexcept {
  for (const Slot& slot : slots_) {
    if (named(slot, name)) return field(slot).value;
  }
  return std::nullopt;
}

std::optional<std::string> HTTPHeaders::get(std::string_view name) const {
  std::optional<std::string> joined;
  for (const Slot& slot : slots_) {
    if (!named(slot, name)) continue;
    HeaderField f = field(slot);
    if (joined) {
      joined->push_back(',');
      joined->append(f.value);
    } else {
      joined.emplace(f.value);
    }
  }
  return joined;
}

std::string HTTPHeaders::get(std::string_view name, std::string_view default_value) const {
  std::optional<std::string> joined = get(name);
  return joined ? std::move(*joined) : std::string(default_value);
}

std::vector<std::string_view> HTTPHeaders::get_list(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const Slot& slot : slots_) {
    if (named(slot, name)) values.push_back(field(slot).value);
  }
  return values;
}

}  // namespace squall
