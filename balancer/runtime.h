// One configuration generation as the workers use it: the validated Config, the pools built
// from it, and per-listener routers and counters. Immutable after build() except for atomic
// counters, so workers share it without locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "balancer/backend.h"
#include "balancer/config.h"
#include "balancer/router.h"

namespace ringlb::balancer {

struct ListenerStats {
  std::atomic<uint32_t> active{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected_limit{0};   // closed at accept: connection limit reached
  std::atomic<uint64_t> refused_hello{0};    // invalid / timed-out ClientHello
  std::atomic<uint64_t> refused_route{0};    // no route (close or alert)
  std::atomic<uint64_t> backend_failures{0}; // no backend could be connected
};

struct ListenerRuntime {
  const ListenerConfig* config = nullptr;
  uint32_t index = 0;
  Router router;
  ListenerStats stats;

  ListenerRuntime(const ListenerConfig& c, uint32_t i, const std::unordered_map<std::string, uint32_t>& pools)
      : config(&c), index(i), router(c, pools) {}
};

struct Runtime {
  Config config;
  std::vector<Pool> pools;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners;
  std::atomic<uint32_t> active{0};            // live connections, all listeners and workers
  std::atomic<uint64_t> rejected_global_limit{0};

  static std::unique_ptr<Runtime> build(Config config);
};

}  // namespace ringlb::balancer
