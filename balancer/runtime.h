// One configuration generation as the workers use it: the validated Config, the pools built
// from it, and per-listener routers and counters. Immutable after build() except for atomic
// counters, so workers share it without locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "balancer/backend.h"
#include "balancer/config.h"
#include "balancer/router.h"
#include "core/cidr.h"

namespace ringlb::tls {
class CertificateStore;
class SharedSessionCache;
class TicketKeys;
class ClientCredentials;
}  // namespace ringlb::tls

namespace ringlb::balancer {

struct ListenerStats {
  std::atomic<uint32_t> active{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected_limit{0};   // closed at accept: connection limit reached
  std::atomic<uint64_t> refused_hello{0};    // invalid / timed-out ClientHello
  std::atomic<uint64_t> refused_route{0};    // no route (close or alert)
  std::atomic<uint64_t> refused_proxy{0};    // PROXY header invalid, or sent by an untrusted peer
  std::atomic<uint64_t> backend_failures{0}; // no backend could be connected
  std::atomic<uint64_t> handshakes{0};       // terminate: completed client handshakes
  std::atomic<uint64_t> handshakes_resumed{0};
  std::atomic<uint64_t> handshake_failures{0};
  std::atomic<uint64_t> bytes_in{0};         // client -> backend, counted when a connection ends
  std::atomic<uint64_t> bytes_out{0};        // backend -> client
};

// Connections routed by one route of a listener (or by its default).
struct RouteStats {
  std::atomic<uint64_t> connections{0};
};

struct ListenerRuntime {
  const ListenerConfig* config = nullptr;
  uint32_t index = 0;
  Router router;
  // Counters continue across reloads for a listener of the same name (see StateStore).
  std::shared_ptr<ListenerStats> shared_stats;
  ListenerStats& stats;
  // routes[i] for ListenerConfig::routes[i]; the last entry counts default_pool.
  std::vector<std::shared_ptr<RouteStats>> route_stats;
  std::vector<core::Cidr> proxy_trusted;  // empty = any upstream may send a PROXY header

  ListenerRuntime(const ListenerConfig& c, uint32_t i, const std::unordered_map<std::string, uint32_t>& pools,
                  StateStore* store);
  // The counter for RouteDecision::route (-1 = the default).
  RouteStats& routeStats(int32_t route) {
    return *route_stats[route < 0 ? route_stats.size() - 1 : static_cast<size_t>(route)];
  }
  // "sni=api.example.org alpn=h2", "default": how metrics name route `i` (-1 = default).
  static std::string routeLabel(const ListenerConfig& c, int32_t route);
};

// Key material read from disk once per configuration generation, before privileges are
// dropped; the workers build their own OpenSSL contexts from it without touching files.
struct ListenerTls {
  std::shared_ptr<const tls::CertificateStore> certificates;  // null: the listener does not terminate
  std::shared_ptr<const tls::TicketKeys> ticket_keys;         // null: tickets off
  std::shared_ptr<tls::SharedSessionCache> sessions;          // null: session cache off
};
struct PoolTls {
  std::shared_ptr<const tls::ClientCredentials> credentials;  // null: plain TCP to the backends
};

// Process-wide counters, continued by every generation.
struct GlobalStats {
  std::atomic<uint32_t> active{0};            // live connections, all listeners, workers and generations
  std::atomic<uint64_t> rejected_global_limit{0};
};

struct Runtime {
  Config config;
  StateStore* store = nullptr;                // where counters and health state persist
  std::vector<Pool> pools;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners;
  std::vector<ListenerTls> listener_tls;      // parallel to listeners
  std::vector<PoolTls> pool_tls;              // parallel to pools
  std::vector<PoolTls> check_tls;             // parallel to pools: credentials of TLS health checks
  std::shared_ptr<GlobalStats> global_stats;
  std::atomic<uint32_t>& active;
  std::atomic<uint64_t>& rejected_global_limit;

  explicit Runtime(std::shared_ptr<GlobalStats> global)
      : global_stats(std::move(global)), active(global_stats->active),
        rejected_global_limit(global_stats->rejected_global_limit) {}

  // Builds pools and routers and reads every certificate, key, CA, CRL and ticket key file,
  // then builds each TLS context once to validate policies. On failure returns nullptr with
  // one line per problem in `errors` ("file:line:col: [listener.tls] of ...: what"); key
  // files readable by others and similar go to `warnings`.
  // With a store, health state and counters continue those of the previous generation.
  // `pem_overlay` (path -> PEM text) replaces listener certificate files' contents, see
  // tls::CertificateStore::load(); the runtime API's "commit ssl cert" uses it.
  static std::unique_ptr<Runtime> build(Config config, std::vector<std::string>& errors,
                                        std::vector<std::string>& warnings, StateStore* store = nullptr,
                                        const std::map<std::string, std::string>* pem_overlay = nullptr);
  ~Runtime();
  // Applies this generation's health settings (checks, rise/fall, ejection, slow start,
  // configured weights) to its backends' shared state. Called when the generation is
  // committed (start-up, successful reload); build() alone changes nothing shared.
  void commitHealthSettings();
};

}  // namespace ringlb::balancer
