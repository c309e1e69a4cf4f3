// The ringlb configuration: one TOML file (see conf/internal-vip.toml for a documented
// example). loadConfig() parses and validates it completely before anything uses it, so a
// bad file never half-applies; every error names file:line:column, what is wrong and what
// was expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "health/check_config.h"
#include "tls/tls_config.h"

namespace ringlb::balancer {

using Millis = std::chrono::milliseconds;

enum class LogLevel : uint8_t { Trace, Debug, Info, Warn, Error, Off };
// Passthrough: route on the ClientHello and relay the TLS bytes untouched. Terminate: decrypt
// with the listener's certificates, then relay plaintext (or re-encrypt, see PoolConfig::tls).
enum class ListenerMode : uint8_t { Passthrough, Terminate };
// A PROXY protocol header expected at the start of every client connection (from a load
// balancer or proxy in front of ringlb).
enum class AcceptProxy : uint8_t { None, V1, V2, Any };
// What to do with a connection that has no SNI / is not TLS / matches no route.
enum class MissAction : uint8_t { Default, Close, Alert };
enum class Algorithm : uint8_t { RoundRobin, LeastConn, PowerOfTwo, Maglev };
enum class HashKey : uint8_t { Sni, ClientIp, SniAndClientIp };
enum class ProxyProtocol : uint8_t { None, V2 };
enum class RelayKind : uint8_t { Auto, Buffers, Splice };
enum class AccessLogFormat : uint8_t { Text, Json };

// A parsed address: "127.0.0.1:443", "[::1]:443", "unix:/run/x.sock" (see core/socket.h).
struct AddressSpec {
  std::string text;  // as written, for logs
  std::string where; // "file:line:col" of the value, for late errors (e.g. bind failure)
};

struct GlobalConfig {
  unsigned workers = 0;                 // 0 = one per online CPU
  uint32_t max_connections = 100000;    // across all listeners and workers
  LogLevel log_level = LogLevel::Info;
  std::string log_file;                 // empty = stderr
  bool access_log = true;
  std::string access_log_file;          // empty = same sink as the main log
  AccessLogFormat access_log_format = AccessLogFormat::Text;  // "text" (key=value) or "json" (one object per line)
  Millis drain_timeout{10000};          // on SIGTERM/SIGINT: how long live connections may finish
  // Auto: each direction starts on the provided-buffer relay (cheapest per connection) and
  // moves to splice once it has carried kAutoSpliceBytes (cheapest per byte); see
  // bench/README.md for the measurements behind this.
  RelayKind relay = RelayKind::Auto;
  // Provided buffers: 64 MiB per worker. 64 KiB buffers (not 16) because fewer, larger
  // receives and sends cut ringlb's CPU per GB through TLS termination by 12-22%
  // (bench/README.md); passthrough bulk moves to splice anyway.
  uint32_t buffer_size = 64 * 1024;     // provided-buffer size for the recv/send relay
  uint32_t buffers_per_worker = 1024;   // provided buffers per worker ring (power of two)
  uint32_t max_queued_per_direction = 4;// buffers queued before a direction stops reading
  // Privilege separation: after listeners are bound and keys read, switch to this user/group.
  std::string user;                     // "" = keep the current user
  std::string group;                    // "" = the user's primary group
  // The runtime API (a subset of HAProxy's, see balancer/runtime_api.h) on a unix socket.
  std::string runtime_socket;           // "" = none
  uint32_t runtime_socket_mode = 0600;  // permission bits of the socket file
  std::string runtime_socket_where;
};

// The admin listener: Prometheus metrics (/metrics) and a plain status page (/).
struct AdminConfig {
  bool enabled = false;
  AddressSpec bind;
};

inline constexpr uint64_t kAutoSpliceBytes = 256 * 1024;
const char* relayKindName(RelayKind kind);

struct RouteConfig {
  std::string sni;    // "" = any; "api.example.org" exact; "*.example.org" one extra label
  std::string alpn;   // "" = any; else the client must offer this protocol
  std::string pool;
  ListenerMode mode = ListenerMode::Passthrough;  // the listener's mode unless the route sets one
  std::string where;
};

struct ListenerConfig {
  std::string name;
  std::vector<AddressSpec> bind;
  ListenerMode mode = ListenerMode::Passthrough;
  uint32_t max_connections = 0;         // 0 = only the global limit
  uint32_t backlog = 4096;
  Millis client_hello_timeout{5000};    // from accept; never reset by trickling bytes
  uint32_t client_hello_max = 16 * 1024;
  std::vector<RouteConfig> routes;
  std::string default_pool;             // "" = none
  MissAction on_no_sni = MissAction::Default;    // Default: default_pool if set, else Alert
  MissAction on_not_tls = MissAction::Close;
  MissAction on_no_match = MissAction::Default;  // Default: default_pool if set, else Alert
  AcceptProxy accept_proxy = AcceptProxy::None;
  std::vector<std::string> proxy_trusted;  // CIDRs allowed to send the PROXY header; empty = any
  bool has_tls = false;                    // a [listener.tls] table is present
  tls::ServerTlsConfig tls;                // file paths are absolute (relative = to the config's dir)
  std::string tls_where;                   // "file:line:col" of [listener.tls], for late errors
  std::string where;
};

struct BackendConfig {
  std::string name;
  AddressSpec address;
  uint32_t weight = 1;                  // 0 = never chosen (but kept, e.g. for affinity)
  std::string tls_name;                 // overrides the pool's tls.verify_name for this backend
  bool backup = false;                  // used only while no primary backend accepts connections
  std::string where;
};

struct PoolConfig {
  std::string name;
  Algorithm algorithm = Algorithm::RoundRobin;
  HashKey hash_key = HashKey::Sni;      // for Maglev
  uint32_t maglev_table_size = 65537;   // prime
  Millis connect_timeout{3000};
  uint32_t retries = 2;                 // extra backends tried after a refused/timed-out connect
  Millis idle_timeout{300000};
  ProxyProtocol proxy_protocol = ProxyProtocol::None;
  bool affinity = true;                 // TLS 1.2 session ID / ticket -> backend
  uint32_t affinity_max_entries = 100000;
  Millis affinity_ttl{300000};
  tls::ClientTlsConfig tls;             // enabled = re-encrypt to the backends ([pool.tls])
  std::string tls_where;                // "file:line:col" of [pool.tls]
  health::CheckConfig health;           // [pool.health]; type None = no active checks
  std::string health_where;             // "file:line:col" of [pool.health] (or of [pool.health.tls])
  health::LifecycleConfig lifecycle;    // eject_after, eject_for, eject_max, slow_start
  std::vector<BackendConfig> backends;
  std::string where;
};

struct Config {
  std::string path;
  GlobalConfig global;
  AdminConfig admin;
  tls::CryptoConfig crypto;             // [crypto]
  std::string crypto_where;             // "file:line:col" of [crypto]
  std::vector<ListenerConfig> listeners;
  std::vector<PoolConfig> pools;

  const PoolConfig* findPool(std::string_view name) const;
};

// Parses and validates `path`. On failure returns std::nullopt and fills `errors` with one
// line per problem, each "file:line:col: what is wrong; expected what" (all problems found,
// not only the first). Semantic checks include: unknown keys (typos), wrong types, bad
// durations ("250ms", "5s", "2m", "1h"), addresses that do not parse, duplicate names,
// routes and default_pool naming unknown pools, pools without backends, invalid wildcard
// patterns, listeners without bind addresses, maglev_table_size not prime.
std::optional<Config> loadConfig(const std::string& path, std::vector<std::string>& errors);

// Same, from text (for tests); `path` is used in error locations only.
std::optional<Config> parseConfig(std::string_view text, const std::string& path,
                                  std::vector<std::string>& errors);

}  // namespace ringlb::balancer
