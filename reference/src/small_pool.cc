#include "squall/detail/small_pool.h"

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

void release_cached_blocks() noexcept {
  for (std::size_t c = 0; c < kPoolClasses; ++c) {
    while (PoolFreeBlock* block = pool_lists.heads[c]) {
      pool_lists.heads[c] = block->next;
      ::operator delete(block);
    }
    pool_lists.counts[c] = 0;
  }
}

// Gives the cached blocks back when the thread exits.
struct Drainer {
  bool armed = false;
  ~Drainer() {
    release_cached_blocks();
    pool_lists.state = PoolState::drained;
  }
};
thread_local Drainer drainer;

}  // namespace

// An empty list, or a size the pool does not keep.
void* pool_allocate_slowly(std::size_t size) {
  const std::size_t c = pool_class_of(size);
  if (!kPooling || c >= kPoolClasses) return ::operator new(size);
  return ::operator new(pool_class_bytes(c));
}

// The first free on a thread (which registers the drain), a full class, a size the pool
// does not keep, null, and frees during thread exit.
void pool_deallocate_slowly(void* block, std::size_t c) noexcept {
  if (block == nullptr) return;
  if (!kPooling || c >= kPoolClasses || pool_lists.state == PoolState::drained ||
      pool_lists.counts[c] >= kPoolMaxCounts[c]) {
    ::operator delete(block);
    return;
  }
  // Touching the Drainer registers its destructor for thread exit; a thread_local with a
  // destructor costs a guard check per access, so it is touched once, not per free.
  drainer.armed = true;
  pool_lists.state = PoolState::armed;
  pool_deallocate(block, pool_class_bytes(c));
}

void pool_trim() noexcept { release_cached_blocks(); }

std::size_t pool_cached_bytes() noexcept {
  std::size_t bytes = 0;
  for (std::size_t c = 0; c < kPoolClasses; ++c) bytes += pool_lists.counts[c] * pool_class_bytes(c);
  return bytes;
}

bool pool_is_active() noexcept { return kPooling; }

}  // namespace squall::detail
