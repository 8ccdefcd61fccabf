#include "squall/task.h"

namespace squall {

Future<void> sleep(Duration delay) {
  Future<void> done;
  IOLoop::current().call_later(delay, [done]() mutable { done.set_result(); });
  return done;
}

namespace detail {

void log_exception_after_timeout(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Exception in Future after timeout: {}",
        describe_current_exception());
  }
}

void log_extra_exception_in_when_all(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Multiple exceptions in when_all: {}",
        describe_current_exception());
  }
}

}  // namespace detail
}  // namespace squall
