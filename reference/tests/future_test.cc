// Behaviours of Future<T>: completion once, done-callbacks on the loop in order,
// exceptions, and the log line for exceptions nobody looked at.
#include "squall/future.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace squall;
using namespace std::chrono_literals;

TEST(Future, DoneCallbacksRunOnTheLoopInRegistrationOrder) {
  IOLoop loop;
  Future<int> f;
  std::vector<int> order;
  f.add_done_callback([&](Future<int>& done) { order.push_back(done.result()); });
  f.add_done_callback([&] { order.push_back(-1); });
  f.set_result(7);
  EXPECT_TRUE(order.empty()) << "callbacks must not run inside set_result";
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{7, -1}));
}

// The first done-callback is stored inline, the others after it: one, three and a
// callback added while the others run all keep registration order.
TEST(Future, OneOrManyDoneCallbacksRunOnceEachInOrder) {
  IOLoop loop;
  Future<int> one;
  Future<int> three;
  std::vector<std::string> order;
  one.add_done_callback([&](Future<int>& f) { order.push_back("one:" + std::to_string(f.result())); });
  for (int i = 0; i < 3; ++i) {
    three.add_done_callback([&, i] {
      order.push_back("three:" + std::to_string(i));
      if (i == 0) three.add_done_callback([&] { order.push_back("late"); });
    });
  }
  three.set_result(3);
  one.set_result(1);
  loop.add_callback([&] { loop.add_callback([&] { loop.stop(); }); });
  loop.start();
  EXPECT_EQ(order, (std::vector<std::string>{"three:0", "three:1", "three:2", "one:1", "late"}));
}

TEST(Future, CallbackAddedToADoneFutureRunsOnALaterIteration) {
  IOLoop loop;
  Future<std::string> f;
  f.set_result("x");
  bool ran = false;
  f.add_done_callback([&] { ran = true; });
  EXPECT_FALSE(ran);
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_TRUE(ran);
}

// Completed inside an I/O handler, a future marked deliver_after_handler runs its
// callback as soon as the handler returns; an unmarked one on the next iteration.
TEST(Future, DeliverAfterHandlerRunsTheCallbackWhenTheHandlerReturns) {
  IOLoop loop;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  Future<int> plain, prompt;
  prompt.deliver_after_handler();
  std::vector<std::string> order;
  plain.add_done_callback([&](Future<int>& f) { order.push_back("plain " + std::to_string(f.result())); });
  prompt.add_done_callback([&](Future<int>& f) { order.push_back("prompt " + std::to_string(f.result())); });
  loop.add_handler(fds[0], [&](int fd, uint32_t) {
    loop.remove_handler(fd);
    plain.set_result(1);
    prompt.set_result(2);
    order.push_back("handler returns");
    loop.add_callback([&] { loop.stop(); });
  }, IOLoop::READ);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  loop.call_later(5s, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<std::string>{"handler returns", "prompt 2", "plain 1"}));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Future, ResultRethrowsTheException) {
  IOLoop loop;
  Future<int> f;
  f.set_exception(std::runtime_error("nope"));
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), std::runtime_error);
  EXPECT_NE(f.exception(), nullptr);
}

TEST(Future, ResultOfAPendingFutureIsAnError) {
  IOLoop loop;
  Future<int> f;
  EXPECT_FALSE(f.done());
  EXPECT_THROW(f.result(), InvalidStateError);
}

TEST(Future, CompletingTwiceIsAnError) {
  IOLoop loop;
  Future<void> f;
  f.set_result();
  EXPECT_THROW(f.set_result(), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("late")), InvalidStateError);
}

TEST(Future, CopiesShareOneState) {
  IOLoop loop;
  Future<int> a;
  Future<int> b = a;
  a.set_result(3);
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.result(), 3);
}

TEST(Future, UnretrievedExceptionIsLoggedWhenDropped) {
  IOLoop loop;
  testing::internal::CaptureStderr();
  {
    Future<int> f;
    f.set_exception(std::runtime_error("lost failure"));
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("never retrieved"), std::string::npos) << err;
  EXPECT_NE(err.find("lost failure"), std::string::npos) << err;
}

TEST(Future, RetrievedExceptionIsNotLogged) {
  IOLoop loop;
  testing::internal::CaptureStderr();
  {
    Future<int> f;
    f.set_exception(std::runtime_error("seen failure"));
    EXPECT_NE(f.exception(), nullptr);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("seen failure"), std::string::npos) << err;
}
