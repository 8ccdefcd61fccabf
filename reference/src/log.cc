#include "squall/log.h"

#include <cxxabi.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <typeinfo>

#include "squall/detail/hot_path.h"

namespace squall {

namespace {

std::atomic<LogLevel> current_level{LogLevel::info};

char level_letter(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return 'D';
    case LogLevel::info: return 'I';
    case LogLevel::warning: return 'W';
    case LogLevel::error: return 'E';
    case LogLevel::none: break;
  }
  return '?';
}

std::string_view category_name(LogCategory category) {
  switch (category) {
    case LogCategory::access: return "access";
    case LogCategory::application: return "application";
    case LogCategory::general: return "general";
  }
  return "?";
}

}  // namespace

void set_log_level(LogLevel level) { current_level.store(level, std::memory_order_relaxed); }

SQUALL_HOT
LogLevel log_level() { return current_level.load(std::memory_order_relaxed); }

LogLevel parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warning") return LogLevel::warning;
  if (name == "error") return LogLevel::error;
  if (name == "none") return LogLevel::none;
  throw std::invalid_argument(fmt::format("unknown log level '{}'", name));
}

void log_line(LogLevel level, LogCategory category, std::string_view message) {
  if (level < log_level()) return;
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%y%m%d %H:%M:%S", &local);
  // One fwrite per line so that lines from pre-forked workers do not interleave.
  std::string line = fmt::format("[{} {} {}] {}\n", level_letter(level), stamp, category_name(category), message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

namespace {

std::string demangle(const char* mangled) {
  int status = 0;
  char* readable = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && readable ? readable : mangled;
  std::free(readable);
  return name;
}

}  // namespace

std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return fmt::format("{}: {}", demangle(typeid(e).name()), e.what());
  } catch (...) {
    return "unknown exception";
  }
}

int log_program_failure(std::string_view program) {
  log(LogLevel::error, LogCategory::general, "{} failed: {}", program, describe_current_exception());
  return 1;
}

}  // namespace squall
