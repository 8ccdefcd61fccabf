#include "squall/future.h"

#include "squall/log.h"

namespace squall::detail {

void log_unretrieved_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Future exception was never retrieved: {}",
        describe_current_exception());
  }
}

void log_spawned_failure(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Exception in spawned coroutine: {}", describe_current_exception());
  }
}

void log_callback_exception() {
  log(LogLevel::error, LogCategory::application, "Exception in future callback: {}", describe_current_exception());
}

}  // namespace squall::detail
