#include "squall/detail/small_pool.h"

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

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so it stays usable while other thread-local objects are
// destroyed at thread exit (their frees then go straight to the general allocator).
struct Lists {
  FreeBlock* heads[kClasses];
  std::uint32_t counts[kClasses];
  bool drained;
  bool drain_armed;  // the Drainer below was touched (so it runs at thread exit)
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
    lists.drained = true;
  }
};
thread_local Drainer drainer;

std::size_t class_of(std::size_t size) { return (size + kGranule - 1) / kGranule - 1; }

}  // namespace

void* pool_allocate(std::size_t size) {
  if (size == 0) size = 1;
  if (!kPooling || size > kMaxPooled) return ::operator new(size);
  std::size_t c = class_of(size);
  if (FreeBlock* block = lists.heads[c]) {
    lists.heads[c] = block->next;
    --lists.counts[c];
    return block;
  }
  return ::operator new((c + 1) * kGranule);
}

void pool_deallocate(void* block, std::size_t size) noexcept {
  if (block == nullptr) return;
  if (size == 0) size = 1;
  if (!kPooling || size > kMaxPooled || lists.drained) {
    ::operator delete(block);
    return;
  }
  std::size_t c = class_of(size);
  if ((lists.counts[c] + 1) * (c + 1) * kGranule > kMaxCachedBytesPerClass) {
    ::operator delete(block);
    return;
  }
  // Touching the Drainer registers its destructor for thread exit; a thread_local with a
  // destructor costs a guard check per access, so it is touched once, not per free.
  if (!lists.drain_armed) {
    drainer.armed = true;
    lists.drain_armed = true;
  }
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = lists.heads[c];
  lists.heads[c] = free_block;
  ++lists.counts[c];
}

void pool_trim() noexcept { release_cached_blocks(); }

std::size_t pool_cached_bytes() noexcept {
  std::size_t bytes = 0;
  for (std::size_t c = 0; c < kClasses; ++c) bytes += lists.counts[c] * (c + 1) * kGranule;
  return bytes;
}

bool pool_is_active() noexcept { return kPooling; }

}  // namespace squall::detail
