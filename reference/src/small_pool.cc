#include "squall/small_pool.h"

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
constexpr std::uint16_t kMaxPerClass = 256;

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so it stays usable while other thread-local objects are
// destroyed at thread exit (their frees then go straight to the general allocator).
struct Lists {
  FreeBlock* heads[kClasses];
  std::uint16_t counts[kClasses];
  bool drained;
};
thread_local Lists lists{};

// Gives the cached blocks back when the thread exits.
struct Drainer {
  bool armed = false;
  ~Drainer() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* block = lists.heads[c]) {
        lists.heads[c] = block->next;
        ::operator delete(block);
      }
      lists.counts[c] = 0;
    }
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
  if (lists.counts[c] >= kMaxPerClass) {
    ::operator delete(block);
    return;
  }
  if (!drainer.armed) drainer.armed = true;  // registers the thread-exit drain
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = lists.heads[c];
  lists.heads[c] = free_block;
  ++lists.counts[c];
}

}  // namespace squall::detail
