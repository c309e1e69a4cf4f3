// ringlb: command line, start-up and shutdown.
//
//   ringlb [run] -c FILE [--ready-file PATH] [--workers N]
//   ringlb check -c FILE
//   ringlb version
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/supervisor.h"
#include "balancer/config.h"
#include "balancer/metrics.h"
#include "balancer/runtime_api.h"
#include "core/control_server.h"
#include "balancer/runtime.h"
#include "balancer/worker.h"
#include "core/features.h"
#include "core/log.h"
#include "core/privileges.h"
#include "core/socket.h"
#include "tls/crypto_setup.h"
#include "tls/ktls_probe.h"

namespace {

using namespace ringlb;

struct Args {
  std::string command = "run";
  std::string config;
  std::string ready_file;
  int workers = -1;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ringlb [run] -c FILE [--ready-file PATH] [--workers N]\n"
               "       ringlb check -c FILE\n"
               "       ringlb version\n"
               "  run         serve the configuration until SIGTERM/SIGINT (drains live connections)\n"
               "  check       validate FILE and print every problem as file:line:col\n"
               "  --ready-file  once listening, write \"listener NAME ADDRESS\" lines there (for tests)\n");
}

bool parseArgs(int argc, char** argv, Args& args) {
  int i = 1;
  if (i < argc && argv[i][0] != '-') args.command = argv[i++];
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    if ((a == "-c" || a == "--config") && value(args.config)) continue;
    if (a == "--ready-file" && value(args.ready_file)) continue;
    std::string n;
    if (a == "--workers" && value(n)) {
      args.workers = std::atoi(n.c_str());
      continue;
    }
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    std::fprintf(stderr, "ringlb: unknown or incomplete argument \"%s\"\n", a.c_str());
    return false;
  }
  if (args.command != "version" && args.config.empty()) {
    std::fprintf(stderr, "ringlb: -c FILE is required\n");
    return false;
  }
  return true;
}

std::optional<balancer::Config> load(const std::string& path) {
  std::vector<std::string> errors;
  auto config = balancer::loadConfig(path, errors);
  for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  return config;
}

// Reads every certificate, key and CA file the configuration names and builds its TLS
// contexts once; prints warnings (e.g. a key file readable by others) to stderr.
std::unique_ptr<balancer::Runtime> buildRuntime(balancer::Config config) {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  auto runtime = balancer::Runtime::build(std::move(config), errors, warnings);
  for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  return runtime;
}

// [crypto] into OpenSSL before any SSL_CTX exists (they take the providers, engine and
// property query in force when they are created). Failure: "where: [crypto]: why".
// Unloads the [crypto] providers when it goes out of scope: declared right after they were
// loaded, so everything holding an SSL_CTX (declared later) is gone by then.
struct CryptoRelease {
  ~CryptoRelease() { tls::releaseCrypto(); }
};

bool setupCrypto(const balancer::Config& config, std::string* error, std::vector<std::string>* report) {
  if (tls::applyCryptoConfig(config.crypto, error, report)) return true;
  *error = (config.crypto_where.empty() ? config.path : config.crypto_where) + ": [crypto]: " + *error;
  return false;
}

int check(const Args& args) {
  auto config = load(args.config);
  if (!config) return 1;
  std::string error;
  std::vector<std::string> report;
  if (!setupCrypto(*config, &error, &report)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  CryptoRelease release_crypto;
  auto runtime = buildRuntime(std::move(*config));
  if (!runtime) return 1;
  size_t backends = 0;
  for (const auto& p : runtime->config.pools) backends += p.backends.size();
  std::printf("%s: OK (%zu listeners, %zu pools, %zu backends)\n", args.config.c_str(),
              runtime->config.listeners.size(), runtime->config.pools.size(), backends);
  return 0;
}

spdlog::level::level_enum toSpdlog(balancer::LogLevel level) {
  switch (level) {
    case balancer::LogLevel::Trace: return spdlog::level::trace;
    case balancer::LogLevel::Debug: return spdlog::level::debug;
    case balancer::LogLevel::Info: return spdlog::level::info;
    case balancer::LogLevel::Warn: return spdlog::level::warn;
    case balancer::LogLevel::Error: return spdlog::level::err;
    case balancer::LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

void raiseFdLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int run(const Args& args) {
  // Block before any thread exists (spdlog's included): every thread inherits the mask, so
  // SIGTERM/SIGINT/SIGHUP are only ever taken by sigwaitinfo() below, even during drain.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto config = load(args.config);
  if (!config) return 2;
  core::LogOptions log_options;
  log_options.level = toSpdlog(config->global.log_level);
  log_options.file = config->global.log_file;
  log_options.access_log = config->global.access_log;
  log_options.access_file = config->global.access_log_file;
  log_options.access_json = config->global.access_log_format == balancer::AccessLogFormat::Json;
  std::string error;
  if (!core::setupLogging(log_options, &error)) {
    std::fprintf(stderr, "ringlb: cannot open log: %s\n", error.c_str());
    return 2;
  }
  core::UringFeatures features = core::probeUring();
  if (features.available) core::log().info("{}", features.summary());
  if (std::string missing = features.missingEssentials(); !missing.empty()) {
    core::log().critical("cannot run: {}", missing);
    core::shutdownLogging();
    return 1;
  }
  const tls::KtlsCaps& ktls = tls::ktlsCaps();
  core::log().info("{}", ktls.summary());
  if (config->crypto.ktls == tls::KtlsMode::On && !ktls.usable()) {
    const std::string& where = config->crypto_where;
    core::log().critical("cannot run: {}{}ktls = \"on\" but {}", where, where.empty() ? "" : ": ", ktls.summary());
    core::shutdownLogging();
    return 1;
  }
  raiseFdLimit();
  std::vector<std::string> crypto_report;
  if (!setupCrypto(*config, &error, &crypto_report)) {
    core::log().critical("{}", error);
    core::log().critical("cannot start: [crypto] could not be applied");
    core::shutdownLogging();
    return 2;
  }
  CryptoRelease release_crypto;
  for (const std::string& line : crypto_report) core::log().info("crypto: {}", line);

  // The control thread (this one): the runtime API socket, the admin HTTP listener and the
  // signals. Bound before privileges are dropped (the socket's directory or a privileged
  // admin port may need root).
  const balancer::Config& initial = *config;
  core::ControlServerOptions control_options;
  control_options.unix_path = initial.global.runtime_socket;
  control_options.unix_mode = initial.global.runtime_socket_mode;
  if (initial.admin.enabled) control_options.http_address = initial.admin.bind.text;
  core::ControlServer control(control_options);
  if (!control.start(&error)) {
    core::log().critical("cannot start the control server: {}", error);
    core::shutdownLogging();
    return 1;
  }
  app::Supervisor supervisor(args.config, args.ready_file, args.workers);
  if (int status = supervisor.start(std::move(*config), features); status != 0) {
    core::shutdownLogging();
    return status;
  }
  if (auto admin = control.httpAddress()) {
    core::log().info("admin listener (metrics, status) on http://{}/", admin->toString());
    supervisor.addReadyLine("admin", admin->toString());
  }
  if (!control_options.unix_path.empty())
    core::log().info("runtime API on unix socket {} (mode {:04o})", control_options.unix_path, control_options.unix_mode);
  core::log().info("ringlb {} started: {} workers, relay={}, allocator={}", "0.1.0", supervisor.workerCount(),
                   balancer::relayKindName(supervisor.current()->config.global.relay), RINGLB_ALLOCATOR_NAME);

  balancer::RuntimeApi api(supervisor);
  control.setCommandHandler([&](std::string_view input) { return api.execute(input); });
  control.setHttpHandler([&](std::string_view path) -> std::optional<core::HttpResponse> {
    if (path == "/metrics") {
      return core::HttpResponse{200, std::string(balancer::kPrometheusContentType),
                                balancer::renderPrometheus(*supervisor.current(), supervisor.processInfo())};
    }
    if (path == "/" || path == "/status") {
      return core::HttpResponse{200, "text/plain; charset=utf-8",
                                balancer::renderStatusPage(*supervisor.current(), supervisor.processInfo())};
    }
    return std::nullopt;
  });
  control.setSignalHandler([&](int sig) {
    if (sig == SIGHUP) {
      core::log().info("SIGHUP: reloading {}", args.config);
      api.reload();  // not supervisor.reload(): the API must forget its committed certificates
      return;
    }
    core::log().info("{}: stopping (drain up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     supervisor.current()->config.global.drain_timeout.count());
    control.stop();
  });
  control.run();
  supervisor.stop();
  uint64_t conns = 0, in = 0, out = 0;
  for (const auto& w : supervisor.workers()) {
    conns += w->stats().connections.load();
    in += w->stats().bytes_in.load();
    out += w->stats().bytes_out.load();
  }
  core::log().info("stopped: {} connections, {} bytes client->backend, {} bytes backend->client", conns, in, out);
  core::shutdownLogging();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parseArgs(argc, argv, args)) {
    usage(stderr);
    return 2;
  }
  if (args.command == "version") {
    std::printf("ringlb 0.1.0\n");
    return 0;
  }
  if (args.command == "check") return check(args);
  if (args.command == "run") return run(args);
  std::fprintf(stderr, "ringlb: unknown command \"%s\"\n", args.command.c_str());
  usage(stderr);
  return 2;
}
