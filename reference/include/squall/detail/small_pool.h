// Per-thread recycling of small blocks for the objects every await creates and destroys:
// coroutine frames (Task's promise) and future states (Future). A request passes through
// a dozen of them; taking them from the general allocator showed as about a quarter of a
// request's instructions in profiles (issue 10, load/performance.md).
//
// Blocks are grouped in 64-byte size classes up to 2 KiB; each thread keeps at most 256 KiB
// of freed blocks per class (so at most 8 MiB per thread across all classes, and far less
// in practice) and returns the rest to the general allocator. A block may be freed on a
// different thread than the one that allocated it: it simply joins that thread's lists.
// Sanitizer builds bypass the pool, so that use-after-free of a frame is still reported.
// Internal (squall/detail/): installed only because public headers include it; not API,
// it may change without notice.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "squall/detail/hot_path.h"

namespace squall::detail {

// ---- the thread's free lists: their common paths inline, as every await takes and
// gives back blocks here (a call each cost about as much as the work); the rare paths,
// the thread-exit drain and trimming are in small_pool.cc.

inline constexpr std::size_t kPoolGranule = 64;
inline constexpr std::size_t kPoolClasses = 2048 / kPoolGranule;  // blocks up to 2 KiB
// Blocks kept per class, bounded in bytes: a loop iteration that finishes requests on
// hundreds of connections frees their frames in a burst, and a count of 256 sent most of
// such a burst back to malloc only to be allocated again on the next one.
inline constexpr std::size_t kPoolMaxCachedBytesPerClass = 256 * 1024;

// The class of a size: blocks of 1-64 bytes are class 0, ..., 1985-2048 class 31. A size
// of 0 wraps to a class past the last, so it is left to the general allocator on both
// ends, as are sizes above 2 KiB: one comparison settles both.
constexpr std::size_t pool_class_of(std::size_t size) noexcept { return (size - 1) / kPoolGranule; }
constexpr std::size_t pool_class_bytes(std::size_t c) noexcept { return (c + 1) * kPoolGranule; }

// How many blocks each class keeps (the byte bound as a count, so a free compares
// instead of multiplying).
inline constexpr std::array<std::uint32_t, kPoolClasses> kPoolMaxCounts = [] {
  std::array<std::uint32_t, kPoolClasses> counts{};
  for (std::size_t c = 0; c < kPoolClasses; ++c) {
    counts[c] = static_cast<std::uint32_t>(kPoolMaxCachedBytesPerClass / pool_class_bytes(c));
  }
  return counts;
}();

struct PoolFreeBlock {
  PoolFreeBlock* next;
};

// What the thread's lists may do: a free takes the inline path only while `armed`.
enum class PoolState : std::uint8_t {
  unarmed,  // the thread-exit drain is not registered yet (done on the first free)
  armed,    // it is: blocks may be kept
  drained,  // the thread is exiting: frees go straight to the general allocator
};

// Trivially destructible and constant-initialized (so reached without a guard), and it
// stays usable while other thread-local objects are destroyed at thread exit. Sanitizer
// builds never arm it: every block then comes from and goes to the general allocator.
struct PoolLists {
  PoolFreeBlock* heads[kPoolClasses];
  std::uint32_t counts[kPoolClasses];
  PoolState state;
};
inline thread_local PoolLists pool_lists{};

void* pool_allocate_slowly(std::size_t size);
void pool_deallocate_slowly(void* block, std::size_t size_class) noexcept;

inline void* pool_allocate(std::size_t size) {
  const std::size_t c = pool_class_of(size);
  if (c < kPoolClasses) {
    if (PoolFreeBlock* block = pool_lists.heads[c]) {
      pool_lists.heads[c] = block->next;
      --pool_lists.counts[c];
      return block;
    }
  }
  return pool_allocate_slowly(size);
}

SQUALL_HOT
inline void pool_deallocate(void* block, std::size_t size) noexcept {
  const std::size_t c = pool_class_of(size);
  if (block != nullptr && c < kPoolClasses && pool_lists.state == PoolState::armed &&
      pool_lists.counts[c] < kPoolMaxCounts[c]) {
    auto* free_block = static_cast<PoolFreeBlock*>(block);
    free_block->next = pool_lists.heads[c];
    pool_lists.heads[c] = free_block;
    ++pool_lists.counts[c];
    return;
  }
  pool_deallocate_slowly(block, c);
}

// Returns every block the calling thread keeps cached to the general allocator (which may
// then give the memory back to the system: malloc_trim). For a server whose burst of
// connections has ended; the pool refills as it is used again.
void pool_trim() noexcept;
// Bytes of freed blocks the calling thread keeps cached (what pool_trim() would return),
// and whether blocks are pooled at all (not in sanitizer builds).
std::size_t pool_cached_bytes() noexcept;
bool pool_is_active() noexcept;

// An allocator over the pool, for std::allocate_shared.
template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_deallocate(p, n * sizeof(T)); }
  template <typename U>
  friend bool operator==(const PoolAllocator&, const PoolAllocator<U>&) noexcept {
    return true;
  }
};

// A base for objects made and destroyed once per request (request handlers, message
// delegates): their memory comes from the pool too. Through a virtual destructor the
// sized operator delete receives the size of the most derived object.
struct PoolAllocated {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* block, std::size_t size) noexcept { pool_deallocate(block, size); }
};

// Spare buffers per thread for each Purpose (a tag type): code that makes and drops a
// buffer per request or per connection gives the spent one back and takes it for the
// next, so the steady state allocates nothing. Buffer is a container with capacity(),
// clear() and swap() (std::string, std::vector). Up to MaxCount are kept: as many as may
// be taken before any comes back (the reads of one epoll batch all take one before the
// requests they carry give theirs back; the connections accepted in one batch before
// those of the last one are destroyed). Only buffers of at most MaxCapacity elements are
// kept, the larger offered when all places are taken, so spares never pin more than
// MaxCount × MaxCapacity elements nor grow a small user's buffer. A spare is handed out
// empty: none of its former contents can be read through it.
template <class Buffer, class Purpose, std::size_t MaxCapacity, std::size_t MaxCount = 1>
class SpareBuffers {
 public:
  // A spare (empty, with its capacity), or an empty buffer when there is none.
  static Buffer take() noexcept {
    Spares& s = spares();
    if (s.count == 0) return {};
    return std::move(s.kept[--s.count]);
  }
  static void give(Buffer&& spent) noexcept {
    if (spent.capacity() > MaxCapacity || spent.capacity() <= Buffer().capacity()) return;
    Spares& s = spares();
    spent.clear();
    if (s.count < MaxCount) {
      // The place is empty (what take() left): a move takes the memory over, cheaper than
      // a string's swap (a buffer given back on every keep-alive request goes this way).
      s.kept[s.count++] = std::move(spent);
    } else if (spent.capacity() > s.kept[MaxCount - 1].capacity()) {
      s.kept[MaxCount - 1].swap(spent);
    }
  }
  // How many are kept now (for tests).
  static std::size_t count() noexcept { return spares().count; }

 private:
  struct Spares {
    Buffer kept[MaxCount];
    std::size_t count = 0;
  };
  // On the heap, not in the thread's static TLS block: kept there, a few KiB of spares
  // per Purpose sat between the small per-thread values every request reads (the loop,
  // the pools' lists, the default heads) and spread them over four pages.
  static Spares& spares() noexcept {
    thread_local const std::unique_ptr<Spares> s(new Spares());  // noexcept: new failing ends the program
    return *s;
  }
};

template <class Purpose, std::size_t MaxCapacity, std::size_t MaxCount = 1>
using SpareString = SpareBuffers<std::string, Purpose, MaxCapacity, MaxCount>;

}  // namespace squall::detail
