// Internal to the configuration loader: the TOML walker shared by config.cc (listeners,
// pools, backends) and config_tls.cc (the [listener.tls] and [pool.tls] tables). Not part
// of the balancer's interface; include balancer/config.h instead.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "balancer/config.h"
#include "tls/tls_config.h"

namespace ringlb::balancer::config_detail {

template <typename E>
struct Named {
  std::string_view name;
  E value;
};

using Keys = std::span<const std::string_view>;

inline constexpr uint64_t kMaxDurationMs = 30ull * 24 * 3600 * 1000;  // 720h: catches unit typos
inline constexpr uint32_t kMaxMaglevTableSize = 16777213;              // largest prime below 2^24
inline constexpr size_t kMaxNameBytes = 64;
inline constexpr std::string_view kAddressForms = R"("IPv4:port", "[IPv6]:port" or "unix:/path")";

std::string quote(std::string_view text);
std::string join(Keys keys);
std::string_view typeName(toml::node_type type);
std::string lowerAscii(std::string_view text);

template <typename E, size_t N>
std::string enumNames(const Named<E> (&names)[N]) {
  std::string out;
  for (const auto& named : names) {
    if (!out.empty()) out += ", ";
    out += named.name;
  }
  return out;
}


// A table being read, with the name messages use for it: [global], [[pool]] "api", ...
struct Section {
  const toml::table& table;
  std::string label;
};

// Walks the parsed TOML document once, filling a Config and collecting every problem.
class Validator {
 public:
  explicit Validator(const std::string& path) : path_(path) {}

  std::optional<Config> run(std::string_view text, std::vector<std::string>& errors);

 private:
  struct Problem {
    toml::source_position pos;
    std::string text;
  };
  struct PoolRef {
    std::string pool;
    toml::source_region where;
    std::string user;  // "route #1 of listener \"vip\""
  };
  std::string at(const toml::source_region& region) const;
  void fail(const toml::source_region& region, std::string_view what, std::string_view expected);
  void typeError(const toml::node& node, std::string_view key, const Section& s,
                 std::string_view expected);

  void checkKeys(const Section& s, Keys allowed);
  std::optional<uint64_t> readInteger(const Section& s, std::string_view key, uint64_t min,
                                      uint64_t max, std::string_view expected);
  template <typename T>
  bool readUint(const Section& s, std::string_view key, T& out, uint64_t min, uint64_t max);
  const toml::node* readString(const Section& s, std::string_view key, std::string& out);
  void readBool(const Section& s, std::string_view key, bool& out);
  void readDuration(const Section& s, std::string_view key, Millis& out);
  template <typename E, size_t N>
  bool readEnum(const Section& s, std::string_view key, E& out, const Named<E> (&names)[N]);
  std::optional<AddressSpec> readAddress(const toml::node& node, std::string_view key,
                                         const Section& s, bool listener);
  std::vector<const toml::table*> readTables(const Section& parent, std::string_view key,
                                             std::string_view header);
  std::string readName(const toml::table& table, std::string_view header, size_t index,
                       std::string_view suffix, std::string& name,
                       std::map<std::string, std::string>& seen, std::string_view kind);

  void parseGlobal(const toml::table& root, GlobalConfig& out);
  void parseListener(const toml::table& table, size_t index, ListenerConfig& out);
  void parseBinds(const Section& s, ListenerConfig& out);
  void parseRoute(const toml::table& table, size_t index, const ListenerConfig& listener,
                  std::map<std::string, std::string>& seen, RouteConfig& out);
  void parsePool(const toml::table& table, size_t index, PoolConfig& out);
  void parseBackend(const toml::table& table, size_t index, const PoolConfig& pool,
                    std::map<std::string, std::string>& names,
                    std::map<std::string, std::string>& addresses, BackendConfig& out);
  void checkPoolAlgorithm(const Section& s, PoolConfig& out);
  void checkPoolRefs(const Config& config);

  // config_tls.cc
  const toml::table* readTable(const Section& parent, std::string_view key, std::string_view header);
  void readPath(const Section& s, std::string_view key, std::string& out);
  void readStringList(const Section& s, std::string_view key, std::vector<std::string>& out);
  void readAlpnList(const Section& s, std::string_view key, std::vector<std::string>& out);
  void readVersion(const Section& s, std::string_view key, tls::TlsVersion& out, bool& set);
  void parsePolicy(const Section& s, tls::TlsPolicy& out);
  void parseListenerTls(const Section& listener, ListenerConfig& out);
  void parseAcceptProxy(const Section& listener, ListenerConfig& out);
  void checkListenerModes(const Section& listener, const ListenerConfig& out);
  void parsePoolTls(const Section& pool, PoolConfig& out);
  void parseClientTls(const Section& s, tls::ClientTlsConfig& tls);

  // config_health.cc
  void parseAdmin(const toml::table& root, AdminConfig& out);
  // Interim: only `async` of [crypto] (config_crypto_async.cc), until the [crypto] parser
  // of the crypto setup work lands; drop this and that file then.
  void parseCryptoAsync(const toml::table& root, Config& out);
  void parseRuntimeSocket(const Section& global, GlobalConfig& out);
  void parseLifecycle(const Section& pool, PoolConfig& out);
  void parseHealth(const Section& pool, PoolConfig& out);
  void parseHttpCheck(const Section& s, health::HttpCheckConfig& out);
  std::string absolutePath(std::string_view path) const;

  const std::string& path_;
  std::vector<Problem> problems_;
  std::vector<PoolRef> pool_refs_;
  std::map<std::string, std::string> listener_names_;
  std::map<std::string, std::string> pool_names_;
  std::map<std::string, std::string> binds_;  // normalized address -> where
};

template <typename T>
bool Validator::readUint(const Section& s, std::string_view key, T& out, uint64_t min,
                         uint64_t max) {
  std::string expected = "an integer " + std::to_string(min) + ".." + std::to_string(max);
  auto value = readInteger(s, key, min, max, expected);
  if (value) out = static_cast<T>(*value);
  return value.has_value();
}

template <typename E, size_t N>
bool Validator::readEnum(const Section& s, std::string_view key, E& out,
                         const Named<E> (&names)[N]) {
  const toml::node* node = s.table.get(key);
  if (!node) return false;
  const auto* text = node->as_string();
  if (!text) {
    typeError(*node, key, s, "a string, one of: " + enumNames(names));
    return false;
  }
  for (const auto& named : names) {
    if (named.name == text->get()) {
      out = named.value;
      return true;
    }
  }
  fail(node->source(), "unknown " + std::string(key) + " " + quote(text->get()) + " in " + s.label,
       "one of: " + enumNames(names));
  return false;
}

}  // namespace ringlb::balancer::config_detail
