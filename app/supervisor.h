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
#include "balancer/runtime_api.h"
#include "balancer/worker.h"
#include "core/features.h"

namespace ringlb::app {

using Outcome = balancer::ReloadOutcome;

// Also the runtime API's host (balancer/runtime_api.h): `reload`, `commit ssl cert`, `show`.
class Supervisor final : public balancer::ControlHost {
 public:
  Supervisor(std::string config_path, std::string ready_file, int workers_override);
  ~Supervisor();

  // Builds the first generation from `config`, binds, drops privileges, starts the workers.
  // Returns 0, or the process exit status on failure (after logging why).
  int start(balancer::Config config, core::UringFeatures features);
  // Re-reads the configuration file (SIGHUP, runtime API `reload`).
  Outcome reload() override;
  // The running configuration again, with these certificate files' contents taken from
  // memory (runtime API `commit ssl cert`); the configuration file is not re-read.
  Outcome commitCertificates(const std::map<std::string, std::string>& pem_by_path) override;
  std::shared_ptr<const balancer::Runtime> current() override { return current_; }
  balancer::ProcessInfo processInfo() override;
  // Stops accepting, drains, joins the workers.
  void stop();
  // An extra "listener @NAME ADDRESS" line for the ready file (the admin listener).
  void addReadyLine(std::string name, std::string address);
  unsigned workerCount() const { return static_cast<unsigned>(workers_.size()); }
  const std::vector<std::unique_ptr<balancer::Worker>>& workers() const { return workers_; }

 private:
  struct Built {
    std::shared_ptr<balancer::Runtime> runtime;
    std::vector<std::unique_ptr<balancer::WorkerTls>> tls;  // per worker
  };
  std::optional<Built> build(balancer::Config config, std::vector<std::string>& errors,
                             const std::map<std::string, std::string>* pem_overlay = nullptr);
  // Steps 2-5 of a reload, for `config`; `what` names it in log lines.
  Outcome apply(balancer::Config config, const std::map<std::string, std::string>* pem_overlay,
                const std::string& what);
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
  std::vector<std::pair<std::string, std::string>> extra_ready_;
  std::chrono::system_clock::time_point started_{};
};

}  // namespace ringlb::app
