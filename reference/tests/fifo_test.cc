#include "squall/detail/fifo.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace squall {
namespace {

TEST(Fifo, ItemsLeaveInTheOrderTheyCame) {
  Fifo<int> q;
  EXPECT_TRUE(q.empty());
  for (int i = 0; i < 5; ++i) q.push_back(i);
  EXPECT_EQ(q.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(q.front(), i);
    q.pop_front();
  }
  EXPECT_TRUE(q.empty());
}

// A popped item is destroyed at once, not when its slot is reused (a queued write's bytes
// or a future must not outlive their turn).
TEST(Fifo, PopReleasesTheItemAtOnce) {
  Fifo<std::shared_ptr<int>> q;
  auto a = std::make_shared<int>(1);
  auto b = std::make_shared<int>(2);
  q.push_back(a);
  q.push_back(b);
  EXPECT_EQ(a.use_count(), 2);
  q.pop_front();
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(b.use_count(), 2);
  EXPECT_EQ(*q.front(), 2);
}

// Interleaved pushes and pops that never empty the queue keep the order and keep the
// storage bounded by the live items (dead slots are reclaimed).
TEST(Fifo, InterleavedUseKeepsOrderAndIteratesLiveItemsOnly) {
  Fifo<std::string> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    q.push_back(std::to_string(next_in++));
    q.emplace_back(std::to_string(next_in++));
    EXPECT_EQ(q.front(), std::to_string(next_out));
    q.pop_front();
    ++next_out;
  }
  EXPECT_EQ(q.size(), 1000u);
  int expected = next_out;
  for (const std::string& item : q) EXPECT_EQ(item, std::to_string(expected++));
  EXPECT_EQ(expected, next_in);
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.begin(), q.end());
}

}  // namespace
}  // namespace squall
