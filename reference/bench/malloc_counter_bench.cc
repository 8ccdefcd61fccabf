// Counts the C allocator's allocations made by the benchmark process, so that a
// benchmark can report allocations per request (web_bench.cc). The executable's malloc,
// calloc and realloc take precedence over the C library's for every caller — libstdc++'s
// operator new included — and forward to glibc's own entry points.
//
// (The file name ends in _bench.cc only so that the benchmark executable's source glob
// picks it up; it holds no benchmark.)
#include <cstddef>
#include <cstdint>

#include "malloc_counter.h"

namespace {
// Relaxed: the benchmarks read it from the thread that allocates; other threads (the
// executor's) only need their increments not to be lost.
uint64_t g_allocations = 0;
}  // namespace

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* block, size_t size);

void* malloc(size_t size) {
  __atomic_add_fetch(&g_allocations, 1, __ATOMIC_RELAXED);
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
  __atomic_add_fetch(&g_allocations, 1, __ATOMIC_RELAXED);
  return __libc_calloc(count, size);
}

void* realloc(void* block, size_t size) {
  __atomic_add_fetch(&g_allocations, 1, __ATOMIC_RELAXED);
  return __libc_realloc(block, size);
}
}

uint64_t bench_allocation_count() { return __atomic_load_n(&g_allocations, __ATOMIC_RELAXED); }
