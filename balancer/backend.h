// A backend server and the pool it belongs to. Pools and backends are built once per
// configuration generation and shared read-mostly by all workers. What must survive a
// reload (health and admin state, live connection counts, traffic counters) lives in a
// BackendShared that every generation containing the same backend (same pool, name and
// address) points to; see StateStore. Selection reads only atomics: no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "balancer/config.h"
#include "core/socket.h"
#include "health/server_state.h"

namespace ringlb::balancer {

struct BackendStats {
  std::atomic<int32_t> active{0};           // live connections, all workers and generations
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> resets{0};          // the backend reset a relayed connection
  std::atomic<uint64_t> redispatches{0};    // connections sent to another backend after this one failed
  std::atomic<uint64_t> bytes_in{0};        // client -> backend
  std::atomic<uint64_t> bytes_out{0};       // backend -> client
  std::atomic<uint64_t> tls_handshakes{0};  // re-encryption: completed handshakes
  std::atomic<uint64_t> tls_resumed{0};     // of which resumed a cached session
  std::atomic<uint64_t> tls_failures{0};    // handshake or certificate verification failed
};

struct BackendShared {
  explicit BackendShared(uint32_t weight) : health(weight) {}
  health::ServerState health;
  BackendStats stats;
};

struct Backend {
  std::string name;
  core::SocketAddress address;
  std::string address_text;                 // as written in the config
  uint32_t weight = 1;                      // configured (Maglev table); see effectiveWeight()
  uint32_t index = 0;                       // position in its pool
  bool backup = false;
  std::shared_ptr<BackendShared> shared = std::make_shared<BackendShared>(1);

  BackendStats& stats() const { return shared->stats; }
  health::ServerState& health() const { return shared->health; }
  // May take a new connection now: admin ready, up, not ejected, weight > 0.
  bool eligible(core::Clock::time_point now) const {
    return shared->health.acceptsNew(now) && shared->health.weight() > 0;
  }
  uint32_t effectiveWeight(core::Clock::time_point now) const { return shared->health.effectiveWeight(now); }
};

class AffinityTable;
class MaglevTable;
struct ListenerStats;
struct RouteStats;
struct GlobalStats;

struct PoolStats {
  std::atomic<uint64_t> no_backend{0};      // connections refused: no backend accepted new ones
  std::atomic<uint64_t> backup_used{0};     // connections sent to a backup backend
};

struct Pool {
  const PoolConfig* config = nullptr;       // owned by the Config this pool was built from
  std::string name;
  uint32_t index = 0;
  std::vector<std::unique_ptr<Backend>> backends;
  std::unique_ptr<MaglevTable> maglev;      // set when config->algorithm == Maglev
  std::unique_ptr<AffinityTable> affinity;  // set when config->affinity
  std::shared_ptr<PoolStats> stats = std::make_shared<PoolStats>();

  // Some backend (primary or backup) accepts new connections now.
  bool hasEligible(core::Clock::time_point now) const;

  Pool();
  ~Pool();
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
};

// Objects kept across configuration generations, by name. Used by the thread that builds
// generations (start-up and reloads); the objects themselves are shared with the workers.
class StateStore {
 public:
  // The shared state of backend `name` of pool `pool` at `address` (created with `weight`
  // if new). Not yet configured with this generation's settings: see
  // Runtime::commitHealthSettings().
  std::shared_ptr<BackendShared> backend(const PoolConfig& pool, const BackendConfig& backend);
  std::shared_ptr<PoolStats> pool(const std::string& name);
  template <typename T>
  std::shared_ptr<T> named(std::map<std::string, std::shared_ptr<T>>& map, const std::string& key) {
    auto& slot = map[key];
    if (!slot) slot = std::make_shared<T>();
    return slot;
  }
  // Drops entries whose only owner is the store (no generation uses them any more).
  void prune();

  std::map<std::string, std::shared_ptr<BackendShared>> backends;
  std::map<std::string, std::shared_ptr<PoolStats>> pools;
  std::map<std::string, std::shared_ptr<ListenerStats>> listeners;  // by listener name
  std::map<std::string, std::shared_ptr<RouteStats>> routes;        // by "listener/route label"
  std::shared_ptr<GlobalStats> global;
};

// Builds pools (backends with parsed addresses, Maglev tables, affinity tables) from a
// validated config. Addresses were validated by loadConfig(), so this does not fail. With a
// store, backends and pool counters continue those of the previous generation.
std::vector<Pool> buildPools(const Config& config, StateStore* store = nullptr);

}  // namespace ringlb::balancer
