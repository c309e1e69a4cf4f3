#include "balancer/runtime.h"

#include "tls/certificate_store.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/session_cache.h"
#include "tls/ticket_keys.h"

namespace ringlb::balancer {

const char* relayKindName(RelayKind kind) {
  switch (kind) {
    case RelayKind::Auto: return "auto";
    case RelayKind::Buffers: return "buffers";
    case RelayKind::Splice: return "splice";
  }
  return "?";
}

ListenerRuntime::ListenerRuntime(const ListenerConfig& c, uint32_t i,
                                 const std::unordered_map<std::string, uint32_t>& pools, StateStore* store)
    : config(&c), index(i), router(c, pools),
      shared_stats(store ? store->named(store->listeners, c.name) : std::make_shared<ListenerStats>()),
      stats(*shared_stats) {
  for (int32_t r = 0; r <= static_cast<int32_t>(c.routes.size()); ++r) {
    int32_t route = r == static_cast<int32_t>(c.routes.size()) ? -1 : r;
    route_stats.push_back(store ? store->named(store->routes, c.name + "/" + routeLabel(c, route))
                                : std::make_shared<RouteStats>());
  }
  for (const std::string& text : c.proxy_trusted) {
    if (auto cidr = core::Cidr::parse(text)) proxy_trusted.push_back(*cidr);  // validated by loadConfig
  }
}

std::string ListenerRuntime::routeLabel(const ListenerConfig& c, int32_t route) {
  if (route < 0) return "default";
  const RouteConfig& rc = c.routes[static_cast<size_t>(route)];
  std::string label;
  if (!rc.sni.empty()) label = "sni=" + rc.sni;
  if (!rc.alpn.empty()) label += (label.empty() ? "alpn=" : " alpn=") + rc.alpn;
  return label.empty() ? "any" : label;
}

namespace {

void prefixed(std::vector<std::string>& out, const std::string& where, const std::string& label,
              const std::vector<std::string>& lines) {
  for (const std::string& line : lines) out.push_back(where + ": " + label + ": " + line);
}

bool loadListenerTls(const ListenerConfig& lc, ListenerTls& out, std::vector<std::string>& errors,
                     std::vector<std::string>& warnings, const tls::PemOverlay* pem_overlay) {
  std::string label = "[listener.tls] of listener \"" + lc.name + "\"";
  tls::CertificateStore::LoadResult loaded = tls::CertificateStore::load(lc.tls, pem_overlay);
  prefixed(errors, lc.tls_where, label, loaded.errors);
  prefixed(warnings, lc.tls_where, label, loaded.warnings);
  if (!loaded.store) return false;
  out.certificates = loaded.store;
  if (lc.tls.session_tickets) {
    std::string error;
    out.ticket_keys = lc.tls.ticket_key_file.empty() ? tls::TicketKeys::random()
                                                      : tls::TicketKeys::load(lc.tls.ticket_key_file, &error);
    if (!out.ticket_keys) {
      errors.push_back(lc.tls_where + ": " + label + ": " + error);
      return false;
    }
  }
  // One session cache for all workers (a new one per generation: sessions made before a
  // reload resume through tickets, or start afresh).
  if (lc.tls.session_cache_size > 0) out.sessions = std::make_shared<tls::SharedSessionCache>(lc.tls.session_cache_size);
  // Build one context now, so a bad cipher list or group name fails here, not in a worker.
  std::string error;
  if (!tls::ServerContext::create(lc.tls, out.certificates, out.ticket_keys, &error)) {
    errors.push_back(lc.tls_where + ": " + label + ": " + error);
    return false;
  }
  return true;
}

// [pool.tls] (re-encryption), or the TLS settings of the pool's health checks.
bool loadClientTls(const tls::ClientTlsConfig& config, const std::string& where, const std::string& label,
                   PoolTls& out, std::vector<std::string>& errors, std::vector<std::string>& warnings) {
  std::vector<std::string> load_errors;
  std::vector<std::string> load_warnings;
  out.credentials = tls::ClientCredentials::load(config, &load_errors, &load_warnings);
  prefixed(errors, where, label, load_errors);
  prefixed(warnings, where, label, load_warnings);
  if (!out.credentials) return false;
  std::string error;
  if (!tls::ClientContext::create(config, out.credentials, &error)) {
    errors.push_back(where + ": " + label + ": " + error);
    return false;
  }
  return true;
}

}  // namespace

Runtime::~Runtime() = default;

void Runtime::commitHealthSettings() {
  for (Pool& pool : pools) {
    for (const auto& backend : pool.backends)
      backend->health().configure(pool.config->health, pool.config->lifecycle, backend->weight);
  }
}

std::unique_ptr<Runtime> Runtime::build(Config config, std::vector<std::string>& errors,
                                        std::vector<std::string>& warnings, StateStore* store,
                                        const std::map<std::string, std::string>* pem_overlay) {
  std::shared_ptr<GlobalStats> global;
  if (store && !store->global) store->global = std::make_shared<GlobalStats>();
  global = store ? store->global : std::make_shared<GlobalStats>();
  auto rt = std::make_unique<Runtime>(std::move(global));
  rt->store = store;
  rt->config = std::move(config);  // pools point into rt->config: build them only after the move
  rt->pools = buildPools(rt->config, store);
  std::unordered_map<std::string, uint32_t> pool_index;
  for (const Pool& pool : rt->pools) pool_index.emplace(pool.name, pool.index);
  bool ok = true;
  rt->listener_tls.resize(rt->config.listeners.size());
  for (uint32_t i = 0; i < rt->config.listeners.size(); ++i) {
    const ListenerConfig& lc = rt->config.listeners[i];
    rt->listeners.push_back(std::make_unique<ListenerRuntime>(lc, i, pool_index, store));
    if (lc.has_tls) ok = loadListenerTls(lc, rt->listener_tls[i], errors, warnings, pem_overlay) && ok;
  }
  rt->pool_tls.resize(rt->pools.size());
  rt->check_tls.resize(rt->pools.size());
  for (size_t i = 0; i < rt->pools.size(); ++i) {
    const PoolConfig& pc = *rt->pools[i].config;
    std::string label = "[pool.tls] of pool \"" + pc.name + "\"";
    if (pc.tls.enabled) ok = loadClientTls(pc.tls, pc.tls_where, label, rt->pool_tls[i], errors, warnings) && ok;
    if (pc.health.speaksTls()) {
      label = "TLS health check of pool \"" + pc.name + "\"";
      ok = loadClientTls(pc.health.tls, pc.health_where, label, rt->check_tls[i], errors, warnings) && ok;
    }
  }
  if (!ok) return nullptr;
  return rt;
}

}  // namespace ringlb::balancer
