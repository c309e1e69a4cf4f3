#include "balancer/backend.h"

#include <cassert>

#include "balancer/affinity_table.h"
#include "balancer/maglev.h"

namespace ringlb::balancer {

// Defined here, where MaglevTable and AffinityTable are complete types.
Pool::Pool() = default;
Pool::~Pool() = default;
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;

bool Pool::hasEligible(core::Clock::time_point now) const {
  for (const auto& backend : backends) {
    if (backend->eligible(now)) return true;
  }
  return false;
}

namespace {

std::unique_ptr<Backend> makeBackend(const PoolConfig& pool, const BackendConfig& config, uint32_t index,
                                     StateStore* store) {
  auto backend = std::make_unique<Backend>();
  backend->name = config.name;
  backend->address_text = config.address.text;
  backend->weight = config.weight;
  backend->index = index;
  backend->backup = config.backup;
  if (store) {
    backend->shared = store->backend(pool, config);
  } else {
    backend->shared = std::make_shared<BackendShared>(config.weight);
    backend->shared->health.configure(pool.health, pool.lifecycle, config.weight);
  }
  auto address = core::SocketAddress::parse(config.address.text);
  // loadConfig() rejected addresses that do not parse; a hand-built Config that skips it
  // gets an empty address (connects fail and count as connect_failures) rather than a crash.
  assert(address.has_value() && "backend address must be validated by loadConfig()");
  if (address) backend->address = *address;
  return backend;
}

}  // namespace

std::shared_ptr<BackendShared> StateStore::backend(const PoolConfig& pool, const BackendConfig& config) {
  std::string key = pool.name + "/" + config.name + "@" + config.address.text;
  auto& slot = backends[key];
  // Configured by Runtime::commitHealthSettings() once the generation is committed: a
  // reload that fails later must not change the running backends' settings.
  if (!slot) slot = std::make_shared<BackendShared>(config.weight);
  return slot;
}

std::shared_ptr<PoolStats> StateStore::pool(const std::string& name) { return named(pools, name); }

void StateStore::prune() {
  std::erase_if(backends, [](const auto& entry) { return entry.second.use_count() == 1; });
  std::erase_if(pools, [](const auto& entry) { return entry.second.use_count() == 1; });
  std::erase_if(listeners, [](const auto& entry) { return entry.second.use_count() == 1; });
  std::erase_if(routes, [](const auto& entry) { return entry.second.use_count() == 1; });
}

std::vector<Pool> buildPools(const Config& config, StateStore* store) {
  std::vector<Pool> pools;
  pools.reserve(config.pools.size());
  for (size_t p = 0; p < config.pools.size(); ++p) {
    const PoolConfig& pool_config = config.pools[p];
    Pool pool;
    pool.config = &pool_config;
    pool.name = pool_config.name;
    pool.index = static_cast<uint32_t>(p);
    if (store) pool.stats = store->pool(pool_config.name);
    pool.backends.reserve(pool_config.backends.size());
    for (size_t b = 0; b < pool_config.backends.size(); ++b) {
      pool.backends.push_back(makeBackend(pool_config, pool_config.backends[b], static_cast<uint32_t>(b), store));
    }
    if (pool_config.algorithm == Algorithm::Maglev) {
      // Table entry i is backend index i: the Maglev input keeps the pool's order. Backups
      // get no entries (weight 0): they only take over, through the fallback, when no
      // primary is eligible.
      std::vector<MaglevBackend> inputs;
      inputs.reserve(pool.backends.size());
      for (const auto& backend : pool.backends)
        inputs.push_back({backend->name, backend->backup ? 0u : backend->weight});
      pool.maglev = std::make_unique<MaglevTable>(inputs, pool_config.maglev_table_size);
    }
    if (pool_config.affinity) {
      pool.affinity = std::make_unique<AffinityTable>(pool_config.affinity_max_entries,
                                                      pool_config.affinity_ttl);
    }
    pools.push_back(std::move(pool));
  }
  return pools;
}

}  // namespace ringlb::balancer
