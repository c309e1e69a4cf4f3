#include "core/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace ringlb::core {
namespace {

std::shared_ptr<spdlog::logger> g_main;
std::shared_ptr<spdlog::logger> g_access;

spdlog::sink_ptr makeSink(const std::string& file) {
  if (file.empty()) return std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
}

}  // namespace

bool setupLogging(const LogOptions& options, std::string* error) {
  try {
    if (!spdlog::thread_pool()) spdlog::init_thread_pool(65536, 1);
    spdlog::sink_ptr main_sink = makeSink(options.file);
    auto main = std::make_shared<spdlog::async_logger>("ringlb", main_sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
    main->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    main->set_level(options.level);
    main->flush_on(spdlog::level::info);
    std::shared_ptr<spdlog::logger> access;
    if (options.access_log) {
      // A sink of its own even for the same destination: spdlog formats per sink, and the
      // access lines have their own pattern.
      spdlog::sink_ptr sink = makeSink(options.access_file.empty() ? options.file : options.access_file);
      access = std::make_shared<spdlog::async_logger>("access", sink, spdlog::thread_pool(),
                                                      spdlog::async_overflow_policy::overrun_oldest);
      // JSON: the record (balancer/access_record.h) supplies the fields and the closing brace.
      access->set_pattern(options.access_json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%e",%v)"
                                              : "%Y-%m-%dT%H:%M:%S.%e access %v");
      access->set_level(spdlog::level::info);
      access->flush_on(spdlog::level::info);
    }
    g_main = std::move(main);
    g_access = std::move(access);
    spdlog::set_default_logger(g_main);
    return true;
  } catch (const spdlog::spdlog_ex& e) {
    if (error) *error = e.what();
    return false;
  }
}

void shutdownLogging() {
  if (g_main) g_main->flush();
  if (g_access) g_access->flush();
  spdlog::shutdown();
}

spdlog::logger& log() {
  if (!g_main) {
    // Before setupLogging (e.g. `ringlb check`): a synchronous stderr logger.
    g_main = spdlog::stderr_logger_mt("ringlb-early");
    g_main->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  return *g_main;
}

spdlog::logger* accessLog() { return g_access.get(); }

}  // namespace ringlb::core
