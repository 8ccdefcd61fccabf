// For tests that check what memory objects keep after they are gone: the bytes of heap
// this process has allocated and not freed. glibc's count (mallinfo2) in plain builds;
// under AddressSanitizer, whose allocator glibc does not see, the sanitizer's own.
#pragma once

#include <malloc.h>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer runtime's (declared here: GCC installs no header for it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace squall::testing_support {

inline std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

}  // namespace squall::testing_support
