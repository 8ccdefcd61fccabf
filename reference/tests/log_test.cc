// Tests for squall/log.h: the line a program's main() logs when it fails.
#include "squall/log.h"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace squall {
namespace {

TEST(LogProgramFailure, LogsTheProgramAndTheExceptionAndReturnsOne) {
  set_log_level(LogLevel::info);
  testing::internal::CaptureStderr();
  int status = 0;
  try {
    throw std::runtime_error("address already in use");
  } catch (...) {
    status = log_program_failure("echo server");
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("echo server failed: std::runtime_error: address already in use"), std::string::npos) << err;
  EXPECT_NE(err.find("[E "), std::string::npos) << "logged at error level: " << err;
}

}  // namespace
}  // namespace squall
