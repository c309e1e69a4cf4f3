// Logging: a main logger ("ringlb") and an access logger ("access"), both spdlog async
// loggers (a full queue drops the oldest line rather than block the event loop).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace ringlb::core {

struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  std::string file;         // "" = stderr
  bool access_log = true;
  std::string access_file;  // "" = same sink as the main log
  bool access_json = false; // access lines are JSON objects: the pattern opens them with the time
};

// Installs the loggers; returns false with *error if a file cannot be opened.
bool setupLogging(const LogOptions& options, std::string* error);
void shutdownLogging();

spdlog::logger& log();
// nullptr when access logging is off.
spdlog::logger* accessLog();

}  // namespace ringlb::core
