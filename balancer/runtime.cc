#include "balancer/runtime.h"

namespace ringlb::balancer {

const char* relayKindName(RelayKind kind) {
  switch (kind) {
    case RelayKind::Auto: return "auto";
    case RelayKind::Buffers: return "buffers";
    case RelayKind::Splice: return "splice";
  }
  return "?";
}

std::unique_ptr<Runtime> Runtime::build(Config config) {
  auto rt = std::make_unique<Runtime>();
  rt->config = std::move(config);  // pools point into rt->config: build them only after the move
  rt->pools = buildPools(rt->config);
  std::unordered_map<std::string, uint32_t> pool_index;
  for (const Pool& pool : rt->pools) pool_index.emplace(pool.name, pool.index);
  for (uint32_t i = 0; i < rt->config.listeners.size(); ++i) {
    rt->listeners.push_back(std::make_unique<ListenerRuntime>(rt->config.listeners[i], i, pool_index));
  }
  return rt;
}

}  // namespace ringlb::balancer
