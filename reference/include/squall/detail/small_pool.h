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

#include <cstddef>
#include <new>
#include <string>

namespace squall::detail {

void* pool_allocate(std::size_t size);
void pool_deallocate(void* block, std::size_t size) noexcept;
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

// Spare std::strings per thread for each Purpose (a tag type): code that makes and drops
// a buffer per request gives the spent one back and takes it for the next, so the steady
// state allocates nothing. Up to MaxCount are kept: as many as may be taken before any
// comes back (the reads of one epoll batch all take one before the requests they carry
// give theirs back). Only strings of at most MaxCapacity bytes are kept, the larger
// offered when all places are taken, so spares never pin more than MaxCount × MaxCapacity
// bytes nor grow a small user's buffer.
template <class Purpose, std::size_t MaxCapacity, std::size_t MaxCount = 1>
class SpareString {
 public:
  // A spare (empty, with its capacity), or an empty string when there is none.
  static std::string take() noexcept {
    Spares& s = spares();
    if (s.count == 0) return {};
    return std::move(s.kept[--s.count]);
  }
  static void give(std::string&& spent) noexcept {
    if (spent.capacity() > MaxCapacity || spent.capacity() <= std::string().capacity()) return;
    Spares& s = spares();
    spent.clear();
    if (s.count < MaxCount) {
      s.kept[s.count++].swap(spent);
    } else if (spent.capacity() > s.kept[MaxCount - 1].capacity()) {
      s.kept[MaxCount - 1].swap(spent);
    }
  }

 private:
  struct Spares {
    std::string kept[MaxCount];
    std::size_t count = 0;
  };
  static Spares& spares() noexcept {
    thread_local Spares s;
    return s;
  }
};

}  // namespace squall::detail
