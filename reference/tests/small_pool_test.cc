#include "squall/detail/small_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace squall::detail {
namespace {

// What the pool keeps is counted, so that a server deciding whether to trim its memory
// after a burst (HTTPServer::trim_memory_when_idle) sees the blocks malloc counts as used.
TEST(SmallPool, CountsTheBytesItKeepsAndTrimReturnsThem) {
  pool_trim();
  EXPECT_EQ(pool_cached_bytes(), 0u);
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(pool_allocate(100));  // 128-byte class
  for (void* block : blocks) pool_deallocate(block, 100);
  EXPECT_EQ(pool_cached_bytes(), pool_is_active() ? 10u * 128u : 0u);
  void* again = pool_allocate(120);  // the same class: one cached block taken back
  EXPECT_EQ(pool_cached_bytes(), pool_is_active() ? 9u * 128u : 0u);
  pool_deallocate(again, 120);
  pool_trim();
  EXPECT_EQ(pool_cached_bytes(), 0u);
}

TEST(SmallPool, KeepsAtMostItsBoundPerClass) {
  pool_trim();
  std::vector<void*> blocks;
  for (int i = 0; i < 4096; ++i) blocks.push_back(pool_allocate(64));
  for (void* block : blocks) pool_deallocate(block, 64);
  EXPECT_LE(pool_cached_bytes(), 256u * 1024u);
  if (pool_is_active()) {
    EXPECT_GT(pool_cached_bytes(), 0u);
  }
  pool_trim();
}

// The bound is in bytes: the largest class (2 KiB blocks) keeps exactly 128 of them.
// Blocks of 0 bytes and above 2 KiB are the general allocator's, on both ends.
TEST(SmallPool, KeepsExactlyItsByteBoundAndLeavesOddSizesToMalloc) {
  pool_trim();
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(pool_allocate(2048));
  for (void* block : blocks) pool_deallocate(block, 2048);
  EXPECT_EQ(pool_cached_bytes(), pool_is_active() ? 128u * 2048u : 0u);
  pool_trim();
  void* empty = pool_allocate(0);
  void* large = pool_allocate(2049);
  ASSERT_NE(empty, nullptr);
  ASSERT_NE(large, nullptr);
  pool_deallocate(empty, 0);
  pool_deallocate(large, 2049);
  pool_deallocate(nullptr, 64);
  EXPECT_EQ(pool_cached_bytes(), 0u);
}

// A batch of takes before any give (the reads of one loop iteration) is served from
// spares up to MaxCount: the strings come back with their capacity, the same memory.
TEST(SpareString, KeepsUpToMaxCountAndGivesThemBack) {
  struct Batch;
  using Spares = SpareString<Batch, 1024, 4>;
  std::vector<std::string> spent;
  std::vector<const char*> memory;
  for (int i = 0; i < 6; ++i) {
    spent.emplace_back(500, 'x');
    memory.push_back(spent.back().data());
  }
  for (std::string& s : spent) Spares::give(std::move(s));  // two beyond the bound: dropped
  std::vector<const char*> taken;
  for (int i = 0; i < 6; ++i) {
    std::string s = Spares::take();
    EXPECT_TRUE(s.empty());
    if (s.capacity() >= 500) taken.push_back(s.data());
  }
  ASSERT_EQ(taken.size(), 4u);
  for (const char* p : taken) EXPECT_NE(std::find(memory.begin(), memory.end(), p), memory.end());
}

// Neither a string above MaxCapacity nor one without heap memory is kept; when all places
// are taken a larger string replaces a smaller one.
TEST(SpareString, KeepsOnlyWhatIsWorthKeeping) {
  struct Sizes;
  using Spares = SpareString<Sizes, 1024, 1>;
  Spares::give(std::string(2000, 'x'));
  Spares::give(std::string("short"));
  EXPECT_EQ(Spares::take().capacity(), std::string().capacity());
  Spares::give(std::string(100, 'x'));
  Spares::give(std::string(800, 'x'));
  EXPECT_GE(Spares::take().capacity(), 800u);
  EXPECT_EQ(Spares::take().capacity(), std::string().capacity());
}

// Any container with a capacity: a connection's list of parsed fields is handed on as its
// buffers are. Spares come out empty (the fields of the connection before are not read
// as this one's), at most MaxCount are kept, none above MaxCapacity elements.
TEST(SpareBuffers, VectorsComeBackEmptyAndAreBoundedInCountAndSize) {
  struct Fields;
  using Spares = SpareBuffers<std::vector<int>, Fields, 64, 3>;
  std::vector<const int*> memory;
  for (int i = 0; i < 5; ++i) {
    std::vector<int> spent(10, 7);
    memory.push_back(spent.data());
    Spares::give(std::move(spent));
  }
  EXPECT_EQ(Spares::count(), 3u);
  Spares::give(std::vector<int>(100, 7));  // above MaxCapacity: dropped
  EXPECT_EQ(Spares::count(), 3u);
  for (int i = 0; i < 3; ++i) {
    std::vector<int> spare = Spares::take();
    EXPECT_TRUE(spare.empty());
    EXPECT_GE(spare.capacity(), 10u);
    EXPECT_LE(spare.capacity(), 64u);
    EXPECT_NE(std::find(memory.begin(), memory.end(), spare.data()), memory.end());
  }
  EXPECT_EQ(Spares::count(), 0u);
  EXPECT_EQ(Spares::take().capacity(), 0u);
}

}  // namespace
}  // namespace squall::detail
