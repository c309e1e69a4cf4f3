#include "app/supervisor.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "core/log.h"
#include "core/privileges.h"
#include "core/socket.h"
#include "tls/crypto_setup.h"

namespace ringlb::app {

using balancer::ListenSocket;

Supervisor::Supervisor(std::string config_path, std::string ready_file, int workers_override)
    : config_path_(std::move(config_path)), ready_file_(std::move(ready_file)), workers_override_(workers_override) {}

Supervisor::~Supervisor() { stop(); }

std::optional<Supervisor::Built> Supervisor::build(balancer::Config config, std::vector<std::string>& errors,
                                                   const std::map<std::string, std::string>* pem_overlay) {
  std::vector<std::string> warnings;
  std::unique_ptr<balancer::Runtime> runtime =
      balancer::Runtime::build(std::move(config), errors, warnings, &store_, pem_overlay);
  for (const std::string& w : warnings) core::log().warn("{}", w);
  if (!runtime) return std::nullopt;
  Built built;
  built.runtime = std::move(runtime);
  for (unsigned w = 0; w < worker_count_; ++w) {
    std::string error;
    auto tls = balancer::WorkerTls::build(*built.runtime, &error);
    if (!tls) {
      errors.push_back("worker " + std::to_string(w) + ": " + error);
      return std::nullopt;
    }
    built.tls.push_back(std::move(tls));
  }
  return built;
}

bool Supervisor::bindNew(const balancer::Runtime& rt, std::vector<std::vector<ListenSocket>>& per_worker,
                         std::map<std::string, std::string>& added, std::vector<std::string>& errors) {
  per_worker.clear();
  per_worker.resize(worker_count_);
  std::set<std::string> seen;
  for (uint32_t li = 0; li < rt.config.listeners.size(); ++li) {
    const balancer::ListenerConfig& lc = rt.config.listeners[li];
    for (const balancer::AddressSpec& spec : lc.bind) {
      std::string key = balancer::listenKey(lc, spec);
      if (!seen.insert(key).second) continue;  // the same kernel-port bind twice in one listener
      auto addr = core::SocketAddress::parse(spec.text);
      if (!addr) continue;  // validated by loadConfig
      bool kept = bound_.count(key) > 0;
      for (unsigned w = 0; w < worker_count_; ++w) {
        if (addr->isUnix() && w > 0) break;  // unix sockets cannot be reuseport-shared
        if (kept) {
          per_worker[w].push_back({li, key, {}});
          continue;
        }
        if (addr->isUnix() && w == 0) ::unlink(spec.text.c_str() + 5);  // stale socket file
        std::string error;
        core::UniqueFd fd = core::listenOn(*addr, static_cast<int>(lc.backlog), &error);
        if (!fd) {
          errors.push_back(spec.where + ": listener " + lc.name + ": " + error);
          return false;  // the fds bound so far close with per_worker
        }
        if (w == 0) {
          if (auto local = core::localAddress(fd.get()); local && !addr->isUnix()) addr = local;
          added[key] = lc.name + " " + addr->toString();
        }
        per_worker[w].push_back({li, key, std::move(fd)});
      }
    }
  }
  return true;
}

void Supervisor::writeReadyFile() {
  if (ready_file_.empty()) return;
  std::string tmp = ready_file_ + ".tmp";
  {
    std::ofstream out(tmp);
    for (const auto& [key, entry] : bound_) out << "listener " << entry.first << " " << entry.second << "\n";
    for (const auto& [name, address] : extra_ready_) out << "listener @" << name << " " << address << "\n";
    if (!out) {
      core::log().error("cannot write ready file {}: {}", tmp, std::strerror(errno));
      return;
    }
  }
  if (std::rename(tmp.c_str(), ready_file_.c_str()) != 0)
    core::log().error("cannot write ready file {}: {}", ready_file_, std::strerror(errno));
}

int Supervisor::start(balancer::Config config, core::UringFeatures features) {
  started_ = std::chrono::system_clock::now();
  worker_count_ = workers_override_ > 0 ? static_cast<unsigned>(workers_override_) : config.global.workers;
  if (worker_count_ == 0) worker_count_ = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> errors;
  auto built = build(std::move(config), errors);
  if (!built) {
    for (const std::string& e : errors) core::log().critical("{}", e);
    core::log().critical("cannot start: the configuration above could not be loaded");
    return 2;
  }
  std::vector<std::vector<ListenSocket>> sockets;
  std::map<std::string, std::string> added;
  if (!bindNew(*built->runtime, sockets, added, errors)) {
    for (const std::string& e : errors) core::log().critical("{}", e);
    return 1;
  }
  for (const auto& [key, text] : added) {
    size_t space = text.find(' ');
    bound_[key] = {text.substr(0, space), text.substr(space + 1)};
  }
  // Ports are bound and every key is in memory: nothing below needs root, and no client
  // byte has been read yet.
  const balancer::GlobalConfig& global = built->runtime->config.global;
  if (!global.user.empty() || !global.group.empty()) {
    std::string error;
    if (!core::dropPrivileges(global.user, global.group, &error)) {
      core::log().critical("cannot drop privileges: {}", error);
      return 1;
    }
    core::log().info("running as user {} (uid {}), group {}", global.user.empty() ? "-" : global.user, ::getuid(),
                     ::getgid());
    // The workers create their rings as this user: what root could use (e.g. with
    // kernel.io_uring_disabled = 1, only privileged processes) may be refused now.
    features = core::probeUring();
    if (std::string missing = features.missingEssentials(); !missing.empty()) {
      core::log().critical("cannot run as user {}: {}", global.user, missing);
      return 1;
    }
  }
  current_ = built->runtime;
  current_->commitHealthSettings();
  generation_ = 1;
  for (unsigned w = 0; w < worker_count_; ++w) {
    balancer::GenerationUpdate initial{built->runtime, std::move(built->tls[w]), std::move(sockets[w])};
    workers_.push_back(std::make_unique<balancer::Worker>(w, worker_count_, std::move(initial), features));
    workers_.back()->start();
  }
  bool ok = true;
  for (auto& w : workers_) {
    if (!w->waitReady()) {
      core::log().critical("{}", w->error());
      ok = false;
    }
  }
  if (!ok) {
    stop();
    return 1;
  }
  for (const auto& [key, entry] : bound_) core::log().info("listener {} listening on {}", entry.first, entry.second);
  writeReadyFile();
  return 0;
}

namespace {

// Settings that only a restart applies (the rings, threads, identity and log sinks exist).
void warnRestartOnly(const balancer::GlobalConfig& old, const balancer::GlobalConfig& now,
                     std::vector<std::string>& messages) {
  auto check = [&](bool changed, const char* key) {
    if (changed) messages.push_back(std::string("[global] ") + key + " changed: applies only after a restart");
  };
  check(old.workers != now.workers, "workers");
  check(old.buffer_size != now.buffer_size, "buffer_size");
  check(old.buffers_per_worker != now.buffers_per_worker, "buffers_per_worker");
  check(old.user != now.user || old.group != now.group, "user/group");
  check(old.log_file != now.log_file || old.access_log_file != now.access_log_file ||
            old.access_log != now.access_log || old.log_level != now.log_level,
        "log settings");
  check(old.runtime_socket != now.runtime_socket || old.runtime_socket_mode != now.runtime_socket_mode,
        "runtime_socket");
}

// [crypto] is applied once, at start-up (providers and engines cannot be swapped under live
// connections). A changed one is still checked, so a broken [crypto] fails this reload rather
// than the next restart.
bool checkCryptoChange(const balancer::Config& old, const balancer::Config& now, std::vector<std::string>& errors,
                       std::vector<std::string>& messages) {
  if (old.crypto == now.crypto) return true;
  std::string error;
  if (!tls::checkCryptoConfig(now.crypto, &error)) {
    errors.push_back((now.crypto_where.empty() ? now.path : now.crypto_where) + ": [crypto]: " + error);
    return false;
  }
  messages.push_back("[crypto] changed: applies only after a restart");
  return true;
}

}  // namespace

Outcome Supervisor::reload() {
  Outcome outcome;
  auto config = balancer::loadConfig(config_path_, outcome.messages);
  if (!config) {
    for (const std::string& e : outcome.messages) core::log().error("reload: {}", e);
    core::log().error("reload of {} failed: still serving the previous configuration", config_path_);
    return outcome;
  }
  return apply(std::move(*config), nullptr, "reload of " + config_path_);
}

Outcome Supervisor::commitCertificates(const std::map<std::string, std::string>& pem_by_path) {
  balancer::Config config = current_->config;
  return apply(std::move(config), &pem_by_path, "certificate commit");
}

balancer::ProcessInfo Supervisor::processInfo() {
  balancer::ProcessInfo info;
  info.version = "0.1.0";
  info.pid = static_cast<int>(::getpid());
  info.started = started_;
  info.workers = worker_count_;
  for (const auto& w : workers_) {
    info.connections_total += w->stats().connections.load(std::memory_order_relaxed);
    info.bytes_in += w->stats().bytes_in.load(std::memory_order_relaxed);
    info.bytes_out += w->stats().bytes_out.load(std::memory_order_relaxed);
  }
  info.max_connections = current_->config.global.max_connections;
  info.current_connections = current_->active.load(std::memory_order_relaxed);
  return info;
}

void Supervisor::addReadyLine(std::string name, std::string address) {
  extra_ready_.emplace_back(std::move(name), std::move(address));
  writeReadyFile();
}

Outcome Supervisor::apply(balancer::Config new_config, const std::map<std::string, std::string>* pem_overlay,
                          const std::string& what) {
  Outcome outcome;
  std::optional<balancer::Config> config(std::move(new_config));
  warnRestartOnly(current_->config.global, config->global, outcome.messages);
  std::vector<std::string> errors;
  std::optional<Built> built;
  if (checkCryptoChange(current_->config, *config, errors, outcome.messages))
    built = build(std::move(*config), errors, pem_overlay);
  std::vector<std::vector<ListenSocket>> sockets;
  std::map<std::string, std::string> added;
  if (!built || !bindNew(*built->runtime, sockets, added, errors)) {
    for (const std::string& e : errors) core::log().error("reload: {}", e);
    core::log().error("{} failed: still serving the previous configuration", what);
    outcome.messages.insert(outcome.messages.end(), errors.begin(), errors.end());
    store_.prune();
    return outcome;
  }
  // Commit: from here nothing fails.
  std::set<std::string> keys;
  for (const auto& per_worker : sockets)
    for (const ListenSocket& s : per_worker) keys.insert(s.key);
  size_t closed = 0;
  for (auto it = bound_.begin(); it != bound_.end();) {
    if (keys.count(it->first) == 0) {
      core::log().info("reload: listener {} on {} closed", it->second.first, it->second.second);
      // The workers close the socket; its file would stay behind and refuse a later bind.
      if (it->first.starts_with("unix:")) ::unlink(it->first.c_str() + 5);
      it = bound_.erase(it);
      ++closed;
    } else {
      ++it;
    }
  }
  for (const auto& [key, text] : added) {
    size_t space = text.find(' ');
    bound_[key] = {text.substr(0, space), text.substr(space + 1)};
    core::log().info("reload: listener {} listening on {}", text.substr(0, space), text.substr(space + 1));
  }
  current_ = built->runtime;
  current_->commitHealthSettings();
  ++generation_;
  // A kept address may now belong to a renamed listener.
  for (const balancer::ListenerConfig& lc : current_->config.listeners) {
    for (const balancer::AddressSpec& spec : lc.bind) {
      if (auto it = bound_.find(balancer::listenKey(lc, spec)); it != bound_.end()) it->second.first = lc.name;
    }
  }
  for (unsigned w = 0; w < worker_count_; ++w) {
    workers_[w]->update({built->runtime, std::move(built->tls[w]), std::move(sockets[w])});
  }
  store_.prune();
  for (const std::string& m : outcome.messages) core::log().warn("reload: {}", m);
  std::string summary = "generation " + std::to_string(generation_) + ": " +
                        std::to_string(current_->config.listeners.size()) + " listeners (" +
                        std::to_string(added.size()) + " addresses opened, " + std::to_string(closed) + " closed), " +
                        std::to_string(current_->pools.size()) + " pools";
  core::log().info("{} applied: {}", what, summary);
  outcome.messages.push_back(summary);
  outcome.ok = true;
  writeReadyFile();
  return outcome;
}

void Supervisor::stop() {
  for (auto& w : workers_) w->requestStop();
  for (auto& w : workers_) w->join();
}

}  // namespace ringlb::app
