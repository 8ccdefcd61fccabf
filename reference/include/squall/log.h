// Logging: levelled, categorised log lines on stderr, formatted with fmt.
//
// Tornado logs through three loggers — "tornado.access" (one line per request),
// "tornado.application" (errors in user code: handlers, callbacks, coroutines) and
// "tornado.general" (everything else: protocol errors, stream trouble). Squall keeps the
// same three categories so that a log line says whose fault it is.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace squall {

enum class LogLevel { debug = 10, info = 20, warning = 30, error = 40, none = 100 };

enum class LogCategory { access, application, general };

// The threshold below which lines are dropped (default: info).
void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warning", "error" or "none"; throws std::invalid_argument.
LogLevel parse_log_level(std::string_view name);

// Writes one line: "[I 261124 13:05:01 general] message".
void log_line(LogLevel level, LogCategory category, std::string_view message);

template <typename... Args>
void log(LogLevel level, LogCategory category, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;  // no formatting cost for dropped lines
  log_line(level, category, fmt::format(format, std::forward<Args>(args)...));
}

// Describes the exception currently being handled (for "caught in X: what" lines).
std::string describe_current_exception();

// For the catch (...) that ends a program's main(): logs "<program> failed: <the
// exception being handled>" (error, general) and returns the exit status, 1.
int log_program_failure(std::string_view program);

}  // namespace squall
