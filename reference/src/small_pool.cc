#include "squall/detail/small_pool.h"

#include <array>
#include <cstdint>

namespace squall::detail {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPooling = false;
#else
constexpr bool kPooling = true;
#endif
#else
constexpr bool kPooling = true;
#endif

constexpr std::size_t kGranule = 64;
constexpr std::size_t kMaxPooled = 2048;
constexpr std::size_t kClasses = kMaxPooled / kGranule;
// Blocks kept per class, bounded in bytes: a loop iteration that finishes requests on
// hundreds of connections frees their frames in a burst, and a count of 256 sent most of
// such a burst back to malloc only to be allocated again on the next one.
constexpr std::size_t kMaxCachedBytesPerClass = 256 * 1024;

// The class of a size: blocks of 1-64 bytes are class 0, ..., 1985-2048 class 31. A size
// of 0 wraps to a class past the last, so it is left to the general allocator on both
// ends, as are sizes above kMaxPooled: one comparison settles both.
constexpr std::size_t class_of(std::size_t size) { return (size - 1) / kGranule; }
constexpr std::size_t class_bytes(std::size_t c) { return (c + 1) * kGranule; }

// How many blocks each class keeps (the byte bound as a count, so a free compares
// instead of multiplying).
constexpr std::array<std::uint32_t, kClasses> make_max_counts() {
  std::array<std::uint32_t, kClasses> counts{};
  for (std::size_t c = 0; c < kClasses; ++c) counts[c] = static_cast<std::uint32_t>(kMaxCachedBytesPerClass / class_bytes(c));
  return counts;
}
constexpr std::array<std::uint32_t, kClasses> kMaxCounts = make_max_counts();

struct FreeBlock {
  FreeBlock* next;
};

// What the thread's lists may do: a free takes the fast path only while `armed`.
enum class ListsState : std::uint8_t {
  unarmed,  // the Drainer below has not been touched yet (done on the first free)
  armed,    // the Drainer runs at thread exit: blocks may be kept
  drained,  // the thread is exiting: frees go straight to the general allocator
};

// Trivially destructible, so it stays usable while other thread-local objects are
// destroyed at thread exit (their frees then go straight to the general allocator).
struct Lists {
  FreeBlock* heads[kClasses];
  std::uint32_t counts[kClasses];
  ListsState state;
};
thread_local Lists lists{};

void release_cached_blocks() noexcept {
  for (std::size_t c = 0; c < kClasses; ++c) {
    while (FreeBlock* block = lists.heads[c]) {
      lists.heads[c] = block->next;
      ::operator delete(block);
    }
    lists.counts[c] = 0;
  }
}

// Gives the cached blocks back when the thread exits.
struct Drainer {
  bool armed = false;
  ~Drainer() {
    release_cached_blocks();
    lists.state = ListsState::drained;
  }
};
thread_local Drainer drainer;

void keep(FreeBlock* block, std::size_t c) noexcept {
  block->next = lists.heads[c];
  lists.heads[c] = block;
  ++lists.counts[c];
}

// pool_deallocate's rare cases, out of line so that its common one saves no registers.
[[gnu::noinline]] void deallocate_slowly(void* block, std::size_t c) noexcept {
  if (block == nullptr) return;
  if (!kPooling || c >= kClasses || lists.state == ListsState::drained || lists.counts[c] >= kMaxCounts[c]) {
    ::operator delete(block);
    return;
  }
  // Touching the Drainer registers its destructor for thread exit; a thread_local with a
  // destructor costs a guard check per access, so it is touched once, not per free.
  drainer.armed = true;
  lists.state = ListsState::armed;
  keep(static_cast<FreeBlock*>(block), c);
}

}  // namespace

void* pool_allocate(std::size_t size) {
  const std::size_t c = class_of(size);
  if (!kPooling || c >= kClasses) return ::operator new(size);
  if (FreeBlock* block = lists.heads[c]) {
    lists.heads[c] = block->next;
    --lists.counts[c];
    return block;
  }
  return ::operator new(class_bytes(c));
}

void pool_deallocate(void* block, std::size_t size) noexcept {
  const std::size_t c = class_of(size);
  if (kPooling && block != nullptr && c < kClasses && lists.state == ListsState::armed &&
      lists.counts[c] < kMaxCounts[c]) {
    keep(static_cast<FreeBlock*>(block), c);
    return;
  }
  deallocate_slowly(block, c);
}

void pool_trim() noexcept { release_cached_blocks(); }

std::size_t pool_cached_bytes() noexcept {
  std::size_t bytes = 0;
  for (std::size_t c = 0; c < kClasses; ++c) bytes += lists.counts[c] * class_bytes(c);
  return bytes;
}

bool pool_is_active() noexcept { return kPooling; }

}  // namespace squall::detail
