#pragma once
// SQUALL_HOT marks a function that every request runs, on a keep-alive connection or a new
// one. GCC places such functions in .text.hot, which the linker gathers in one stretch of
// the program: a keep-alive request's code then lies in 38 pages instead of 69, a new
// connection's in 42 instead of 79 (load/profiling/hot_pages.py).
// Why pages: on virtual machines where a system call switches page tables, each return
// from the kernel finds the instruction TLB emptied, and every distinct page of code run
// afterwards costs a page walk: 2 to 5 ns per page per system call where this was measured
// (squall-bench --benchmark_filter=BM_CodeAfterSystemCall; load/performance.md).
// Mark only what hot_pages.py shows on the path: a cold function among the hot ones
// spreads them apart. GCC places them so from -O2 on; clang only with profile data.
// The build goes further where the linker allows: reference/request_path.ld lays the path's
// functions out in the order a request runs them, the standard library's instances too.
#if defined(__GNUC__)
#define SQUALL_HOT [[gnu::hot]]
#else
#define SQUALL_HOT
#endif
