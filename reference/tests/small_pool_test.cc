#include "squall/detail/small_pool.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace squall::detail
