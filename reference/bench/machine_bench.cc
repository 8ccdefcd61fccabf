// What the machine charges for code and data a request spreads over, after a system call.
//
// Each iteration (optionally) makes one cheap system call, then calls K tiny functions
// (BM_CodeAfterSystemCall) or reads K bytes (BM_DataAfterSystemCall) laid out either
// packed (one per 64-byte line, K lines in K/64 pages) or spread (one per 4 KiB page, each
// on a different line so that they do not share a cache set). Compare spread against
// packed at the same K, with and without the call: where a system call empties the TLBs
// (virtual machines that switch page tables on every call), the spread layout pays a page
// walk per page after each call; without the call, or on a machine whose TLBs survive the
// call, the two cost about the same. load/performance.md quotes the numbers; SQUALL_HOT
// (detail/hot_path.h) is what the reference does about its code.
//
//   squall-bench --benchmark_filter=AfterSystemCall
#include <benchmark/benchmark.h>

#if defined(__x86_64__) && defined(__linux__)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace {

using TinyFunction = int (*)(int);
constexpr std::size_t kLine = 64;
constexpr std::size_t kPage = 4096;

// `lea eax, [rdi + 1]; ret`: a function that costs one instruction and a return.
constexpr unsigned char kIncrement[] = {0x8d, 0x47, 0x01, 0xc3};

class CodeLayout {
 public:
  CodeLayout(int count, bool spread) : size_(spread ? count * kPage : count * kLine) {
    void* code = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return;
    code_ = static_cast<unsigned char*>(code);
    for (int i = 0; i < count; ++i) {
      unsigned char* at = spread ? code_ + i * kPage + (i % (kPage / kLine)) * kLine : code_ + i * kLine;
      std::memcpy(at, kIncrement, sizeof kIncrement);
      functions_.push_back(reinterpret_cast<TinyFunction>(at));
    }
    if (mprotect(code_, size_, PROT_READ | PROT_EXEC) != 0) functions_.clear();
  }
  CodeLayout(const CodeLayout&) = delete;
  CodeLayout& operator=(const CodeLayout&) = delete;
  ~CodeLayout() {
    if (code_) munmap(code_, size_);
  }
  bool ready() const { return !functions_.empty(); }
  int run(int value) const {
    for (TinyFunction f : functions_) value = f(value);
    return value;
  }

 private:
  std::size_t size_;
  unsigned char* code_ = nullptr;
  std::vector<TinyFunction> functions_;
};

// Args: functions called per iteration, spread (1: a page each) or packed (0), system call (1/0).
void BM_CodeAfterSystemCall(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const bool system_call = state.range(2) != 0;
  CodeLayout layout(count, state.range(1) != 0);
  if (!layout.ready()) {
    state.SkipWithError("could not map executable memory");
    return;
  }
  int value = 0;
  for (auto _ : state) {
    if (system_call) syscall(SYS_getppid);  // no vDSO shortcut: a real entry into the kernel
    value = layout.run(value);
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK(BM_CodeAfterSystemCall)->ArgsProduct({{16, 64, 128}, {0, 1}, {0, 1}});

// K bytes to read, one per line, in K lines (packed) or K pages (spread), as CodeLayout
// places its functions.
class DataLayout {
 public:
  DataLayout(int count, bool spread) : size_(spread ? count * kPage : count * kLine) {
    void* data = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) return;
    data_ = static_cast<unsigned char*>(data);
    for (int i = 0; i < count; ++i) {
      unsigned char* at = spread ? data_ + i * kPage + (i % (kPage / kLine)) * kLine : data_ + i * kLine;
      *at = 1;  // touched: the page is mapped before the first iteration
      bytes_.push_back(at);
    }
  }
  DataLayout(const DataLayout&) = delete;
  DataLayout& operator=(const DataLayout&) = delete;
  ~DataLayout() {
    if (data_) munmap(data_, size_);
  }
  bool ready() const { return !bytes_.empty(); }
  int run() const {
    int sum = 0;
    for (const unsigned char* at : bytes_) sum += *static_cast<const volatile unsigned char*>(at);
    return sum;
  }

 private:
  std::size_t size_;
  unsigned char* data_ = nullptr;
  std::vector<unsigned char*> bytes_;
};

// Args: bytes read per iteration, spread (1: a page each) or packed (0), system call (1/0).
void BM_DataAfterSystemCall(benchmark::State& state) {
  const bool system_call = state.range(2) != 0;
  DataLayout layout(static_cast<int>(state.range(0)), state.range(1) != 0);
  if (!layout.ready()) {
    state.SkipWithError("could not map memory");
    return;
  }
  for (auto _ : state) {
    if (system_call) syscall(SYS_getppid);
    benchmark::DoNotOptimize(layout.run());
  }
}
BENCHMARK(BM_DataAfterSystemCall)->ArgsProduct({{16, 64, 128}, {0, 1}, {0, 1}});

}  // namespace
#endif
