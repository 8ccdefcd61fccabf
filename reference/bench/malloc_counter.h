// The number of malloc/calloc/realloc calls the benchmark process made so far
// (malloc_counter_bench.cc): read it before and after a measured loop.
#pragma once

#include <cstdint>

uint64_t bench_allocation_count();
