// A backend server and the pool it belongs to. Pools and backends are built once per
// configuration generation and shared read-mostly by all workers; the only mutable state is
// atomic (live connection counts, health), so selection takes no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "balancer/config.h"
#include "core/socket.h"

namespace ringlb::balancer {

struct Backend {
  std::string name;
  core::SocketAddress address;
  uint32_t weight = 1;
  uint32_t index = 0;                       // position in its pool
  std::atomic<int32_t> active{0};           // live connections, all workers
  std::atomic<bool> healthy{true};          // cleared by health checks / passive ejection
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> tls_handshakes{0};  // re-encryption: completed handshakes
  std::atomic<uint64_t> tls_resumed{0};     // of which resumed a cached session
  std::atomic<uint64_t> tls_failures{0};    // handshake or certificate verification failed

  bool eligible() const { return weight > 0 && healthy.load(std::memory_order_relaxed); }
};

class AffinityTable;
class MaglevTable;

struct Pool {
  const PoolConfig* config = nullptr;       // owned by the Config this pool was built from
  std::string name;
  uint32_t index = 0;
  std::vector<std::unique_ptr<Backend>> backends;
  std::unique_ptr<MaglevTable> maglev;      // set when config->algorithm == Maglev
  std::unique_ptr<AffinityTable> affinity;  // set when config->affinity

  Pool();
  ~Pool();
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
};

// Builds pools (backends with parsed addresses, Maglev tables, affinity tables) from a
// validated config. Addresses were validated by loadConfig(), so this does not fail.
std::vector<Pool> buildPools(const Config& config);

}  // namespace ringlb::balancer
