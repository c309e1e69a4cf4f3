// The control thread's view of a running ringlb: the workers, the configuration generation
// serving new connections, the listening sockets, and the state kept across generations.
// Start-up and every reload go through the same steps, so a reload can fail only before
// anything changed:
//   1. parse and validate the configuration file;
//   2. build the Runtime (reads every certificate, key, CA and ticket key file; health state
//      and counters of unchanged backends/listeners continue from the StateStore);
//   3. build every worker's OpenSSL contexts;
//   4. bind the listen addresses that are new (kept ones keep their sockets);
//   5. hand each worker its update (see balancer/worker.h).
// Not thread-safe: called from the control thread only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "balancer/config.h"
#include "balancer/runtime.h"
#include "balancer/worker.h"
#include "core/features.h"

namespace ringlb::app {

struct Outcome {
  bool ok = false;
  std::vector<std::string> messages;  // errors (or, on success, what changed)
};

class Supervisor {
 public:
  Supervisor(std::string config_path, std::string ready_file, int workers_override);
  ~Supervisor();

  // Builds the first generation from `config`, binds, drops privileges, starts the workers.
  // Returns 0, or the process exit status on failure (after logging why).
  int start(balancer::Config config, core::UringFeatures features);
  // Re-reads the configuration file; with `pem_overlay`, these certificate files' contents
  // are taken from memory instead (runtime API `commit ssl cert`).
  Outcome reload(const std::map<std::string, std::string>* pem_overlay = nullptr);
  // Stops accepting, drains, joins the workers.
  void stop();

  std::shared_ptr<const balancer::Runtime> current() const { return current_; }
  const std::string& configPath() const { return config_path_; }
  unsigned workerCount() const { return static_cast<unsigned>(workers_.size()); }
  uint64_t generation() const { return generation_; }
  const std::vector<std::unique_ptr<balancer::Worker>>& workers() const { return workers_; }
  std::chrono::system_clock::time_point started() const { return started_; }

 private:
  struct Built {
    std::shared_ptr<balancer::Runtime> runtime;
    std::vector<std::unique_ptr<balancer::WorkerTls>> tls;  // per worker
  };
  std::optional<Built> build(balancer::Config config, std::vector<std::string>& errors);
  // Binds every address of `runtime` not bound yet; fills per-worker socket lists (kept
  // sockets without an fd). On failure closes what it bound and returns false.
  bool bindNew(const balancer::Runtime& runtime, std::vector<std::vector<balancer::ListenSocket>>& per_worker,
               std::map<std::string, std::string>& added, std::vector<std::string>& errors);
  void writeReadyFile();

  std::string config_path_;
  std::string ready_file_;
  int workers_override_;
  unsigned worker_count_ = 1;
  balancer::StateStore store_;
  std::shared_ptr<balancer::Runtime> current_;
  std::vector<std::unique_ptr<balancer::Worker>> workers_;
  // Listening addresses in use: key (balancer::listenKey) -> "listener-name address" as bound.
  std::map<std::string, std::pair<std::string, std::string>> bound_;
  uint64_t generation_ = 0;
  std::chrono::system_clock::time_point started_{};
};

}  // namespace ringlb::app
