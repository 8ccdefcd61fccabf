// What the machine charges for code and data a request spreads over, after a system call.
//
// Each iteration (optionally) makes one cheap system call, then calls K tiny functions
// (BM_CodeAfterSystemCall) or reads K slots (BM_DataAfterSystemCall, independently or as
// a chain of pointers) laid out either
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

// K slots, one per 64-byte line, in a private mapping: packed in K lines, or spread one
// per 4 KiB page (each on a different line, so that they do not share a cache set).
class Slots {
 public:
  Slots(int count, bool spread) : size_(count * (spread ? kPage : kLine)) {
    void* base = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return;
    base_ = static_cast<unsigned char*>(base);
    for (int i = 0; i < count; ++i) {
      addresses_.push_back(spread ? base_ + i * kPage + (i % (kPage / kLine)) * kLine : base_ + i * kLine);
    }
  }
  Slots(const Slots&) = delete;
  Slots& operator=(const Slots&) = delete;
  ~Slots() {
    if (base_) munmap(base_, size_);
  }
  bool mapped() const { return base_ != nullptr; }
  const std::vector<unsigned char*>& addresses() const { return addresses_; }
  bool make_executable() { return mprotect(base_, size_, PROT_READ | PROT_EXEC) == 0; }

 private:
  std::size_t size_;
  unsigned char* base_ = nullptr;
  std::vector<unsigned char*> addresses_;
};

// A tiny function in each slot.
class CodeLayout {
 public:
  CodeLayout(int count, bool spread) : slots_(count, spread) {
    if (!slots_.mapped()) return;
    for (unsigned char* at : slots_.addresses()) std::memcpy(at, kIncrement, sizeof kIncrement);
    if (!slots_.make_executable()) return;
    for (unsigned char* at : slots_.addresses()) functions_.push_back(reinterpret_cast<TinyFunction>(at));
  }
  bool ready() const { return !functions_.empty(); }
  int run(int value) const {
    for (TinyFunction f : functions_) value = f(value);
    return value;
  }

 private:
  Slots slots_;
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

// In each slot, the address of the next (the last: nullptr). Read either independently,
// slot by slot (the loads overlap, and so do their page walks), or as a chain, each
// address coming from the load before it, as a program follows its objects' pointers
// (each walk waits for the one before).
class DataLayout {
 public:
  DataLayout(int count, bool spread) : slots_(count, spread) {
    const auto& at = slots_.addresses();
    for (std::size_t i = 0; i < at.size(); ++i) {  // written: mapped before the first iteration
      *reinterpret_cast<unsigned char**>(at[i]) = i + 1 < at.size() ? at[i + 1] : nullptr;
    }
  }
  bool ready() const { return slots_.mapped() && !slots_.addresses().empty(); }
  int read_each() const {
    int sum = 0;
    for (const unsigned char* at : slots_.addresses()) sum += *static_cast<const volatile unsigned char*>(at);
    return sum;
  }
  int follow_chain() const {
    int hops = 0;
    for (const unsigned char* at = slots_.addresses().front(); at != nullptr; ++hops) {
      at = *reinterpret_cast<unsigned char* const volatile*>(at);
    }
    return hops;
  }

 private:
  Slots slots_;
};

// Args: slots read per iteration, spread (1: a page each) or packed (0), system call (1/0),
// a chain (1: each address from the load before) or independent reads (0).
void BM_DataAfterSystemCall(benchmark::State& state) {
  const bool system_call = state.range(2) != 0;
  const bool chain = state.range(3) != 0;
  DataLayout layout(static_cast<int>(state.range(0)), state.range(1) != 0);
  if (!layout.ready()) {
    state.SkipWithError("could not map memory");
    return;
  }
  for (auto _ : state) {
    if (system_call) syscall(SYS_getppid);
    benchmark::DoNotOptimize(chain ? layout.follow_chain() : layout.read_each());
  }
}
BENCHMARK(BM_DataAfterSystemCall)->ArgsProduct({{16, 64, 128}, {0, 1}, {0, 1}, {0, 1}});

}  // namespace
#endif
