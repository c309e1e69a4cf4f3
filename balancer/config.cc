#include "balancer/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <string_view>

#include <toml++/toml.h>

#include "balancer/config_validator.h"
#include "core/socket.h"

namespace ringlb::balancer {
namespace config_detail {
namespace {

using namespace std::string_view_literals;

constexpr Named<LogLevel> kLogLevels[] = {
    {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug}, {"info", LogLevel::Info},
    {"warn", LogLevel::Warn},   {"error", LogLevel::Error}, {"off", LogLevel::Off}};
constexpr Named<ListenerMode> kModes[] = {{"passthrough", ListenerMode::Passthrough},
                                           {"terminate", ListenerMode::Terminate}};
constexpr Named<MissAction> kMissActions[] = {
    {"default", MissAction::Default}, {"close", MissAction::Close}, {"alert", MissAction::Alert}};
constexpr Named<Algorithm> kAlgorithms[] = {{"round_robin", Algorithm::RoundRobin},
                                            {"least_conn", Algorithm::LeastConn},
                                            {"p2c", Algorithm::PowerOfTwo},
                                            {"power_of_two", Algorithm::PowerOfTwo},
                                            {"maglev", Algorithm::Maglev}};
constexpr Named<HashKey> kHashKeys[] = {
    {"sni", HashKey::Sni}, {"client_ip", HashKey::ClientIp}, {"sni+client_ip", HashKey::SniAndClientIp}};
constexpr Named<ProxyProtocol> kProxyProtocols[] = {{"none", ProxyProtocol::None},
                                                    {"v2", ProxyProtocol::V2}};
constexpr Named<RelayKind> kRelays[] = {
    {"auto", RelayKind::Auto}, {"buffers", RelayKind::Buffers}, {"splice", RelayKind::Splice}};

constexpr std::string_view kTopKeys[] = {"global", "admin", "crypto", "listener", "pool"};
constexpr std::string_view kGlobalKeys[] = {
    "workers",        "max_connections", "log_level",          "log_file",
    "access_log",     "access_log_file", "drain_timeout",      "relay",
    "buffer_size",    "buffers_per_worker", "max_queued_per_direction", "user",
    "group",          "access_log_format", "runtime_socket", "runtime_socket_mode"};
constexpr std::string_view kListenerKeys[] = {
    "name",         "bind",       "mode",       "max_connections", "backlog",
    "client_hello_timeout", "client_hello_max", "route", "default_pool", "on_no_sni",
    "on_not_tls",   "on_no_match", "accept_proxy", "proxy_trusted", "tls"};
constexpr std::string_view kRouteKeys[] = {"sni", "alpn", "pool", "mode"};
constexpr std::string_view kPoolKeys[] = {
    "name",         "algorithm",      "hash_key",       "maglev_table_size",
    "connect_timeout", "retries",     "idle_timeout",   "proxy_protocol",
    "affinity",     "affinity_max_entries", "affinity_ttl", "backend", "tls",
    "health",       "eject_after",    "eject_for",      "eject_max",      "slow_start"};
constexpr std::string_view kBackendKeys[] = {"name", "address", "weight", "tls_name", "backup"};
constexpr Named<AccessLogFormat> kAccessLogFormats[] = {{"text", AccessLogFormat::Text},
                                                        {"json", AccessLogFormat::Json}};

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d <= n / d; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

enum class DurationStatus : uint8_t { Ok, Malformed, Zero, TooLong };

// "250ms", "5s", "2m", "1h": digits, then exactly one unit, nothing else.
DurationStatus parseDuration(std::string_view text, Millis& out) {
  uint64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (end == text.data()) return DurationStatus::Malformed;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  uint64_t factor = 0;
  if (unit == "ms") factor = 1;
  else if (unit == "s") factor = 1000;
  else if (unit == "m") factor = 60 * 1000;
  else if (unit == "h") factor = 3600 * 1000;
  else return DurationStatus::Malformed;
  if (ec == std::errc::result_out_of_range || count > kMaxDurationMs / factor) {
    return DurationStatus::TooLong;
  }
  if (count == 0) return DurationStatus::Zero;
  out = Millis(static_cast<int64_t>(count * factor));
  return DurationStatus::Ok;
}

struct SniCheck {
  std::string problem;   // empty = valid
  std::string expected;
};

// A host name as sent in SNI (RFC 6066 section 3: no trailing dot, no IP literals), or
// "*." plus at least two labels, matching exactly one extra label.
SniCheck checkSni(std::string_view sni) {
  static const std::string kHostExpected =
      R"(a host name like "api.example.org" or a wildcard like "*.example.org")";
  static const std::string kWildcardExpected =
      R"("*." followed by at least two labels, like "*.example.org")";
  std::string_view host = sni;
  bool wildcard = sni.starts_with("*.");
  if (wildcard) host.remove_prefix(2);
  if (host.find('*') != std::string_view::npos || sni == "*") {
    return {"\"*\" is allowed only as the whole first label", kWildcardExpected};
  }
  if (host.ends_with('.')) return {"a trailing dot is never sent in SNI", kHostExpected};
  if (host.size() > 253) return {"longer than 253 bytes", kHostExpected};
  size_t labels = 0;
  for (size_t start = 0; start <= host.size(); ++labels) {
    size_t dot = std::min(host.find('.', start), host.size());
    std::string_view label = host.substr(start, dot - start);
    if (label.empty()) return {"empty label", kHostExpected};
    if (label.size() > 63) return {"label longer than 63 bytes", kHostExpected};
    if (label.front() == '-' || label.back() == '-') {
      return {"label starts or ends with '-'", kHostExpected};
    }
    for (char c : label) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        return {"non-ASCII character", R"(the A-label (punycode "xn--...") form, which is what SNI carries)"};
      }
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        return {"character " + quote(std::string_view(&c, 1)) + " is not allowed in a host name",
                "letters, digits, '-' and '.' only"};
      }
    }
    start = dot + 1;
  }
  if (wildcard && labels < 2) return {"too few labels after \"*.\"", kWildcardExpected};
  in_addr v4{};
  if (!wildcard && inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1) {
    return {"an IP address is never sent in SNI (RFC 6066 section 3)", kHostExpected};
  }
  return {};
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string join(Keys keys) {
  std::string out;
  for (std::string_view key : keys) {
    if (!out.empty()) out += ", ";
    out += key;
  }
  return out;
}

std::string_view typeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string lowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}


std::string Validator::at(const toml::source_region& region) const {
  return path_ + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

void Validator::fail(const toml::source_region& region, std::string_view what,
                     std::string_view expected) {
  std::string text = at(region);
  text += ": ";
  text += what;
  text += "; expected ";
  text += expected;
  problems_.push_back({region.begin, std::move(text)});
}

void Validator::typeError(const toml::node& node, std::string_view key, const Section& s,
                          std::string_view expected) {
  std::string expected_got(expected);
  expected_got += ", got ";
  expected_got += typeName(node.type());
  fail(node.source(), "wrong type for \"" + std::string(key) + "\" in " + s.label, expected_got);
}

void Validator::checkKeys(const Section& s, Keys allowed) {
  for (auto&& [key, node] : s.table) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    fail(key.source(), "unknown key " + quote(key.str()) + " in " + s.label,
         "one of: " + join(allowed));
  }
}

std::optional<uint64_t> Validator::readInteger(const Section& s, std::string_view key,
                                               uint64_t min, uint64_t max,
                                               std::string_view expected) {
  const toml::node* node = s.table.get(key);
  if (!node) return std::nullopt;
  const auto* integer = node->as_integer();
  if (!integer) {
    typeError(*node, key, s, expected);
    return std::nullopt;
  }
  int64_t value = integer->get();
  if (value < 0 || static_cast<uint64_t>(value) < min || static_cast<uint64_t>(value) > max) {
    fail(node->source(),
         std::string(key) + " = " + std::to_string(value) + " in " + s.label + " is out of range",
         expected);
    return std::nullopt;
  }
  return static_cast<uint64_t>(value);
}

const toml::node* Validator::readString(const Section& s, std::string_view key, std::string& out) {
  const toml::node* node = s.table.get(key);
  if (!node) return nullptr;
  if (const auto* text = node->as_string()) {
    out = text->get();
    return node;
  }
  typeError(*node, key, s, "a string");
  return nullptr;
}

void Validator::readBool(const Section& s, std::string_view key, bool& out) {
  const toml::node* node = s.table.get(key);
  if (!node) return;
  if (const auto* flag = node->as_boolean()) {
    out = flag->get();
  } else {
    typeError(*node, key, s, "true or false");
  }
}

void Validator::readDuration(const Section& s, std::string_view key, Millis& out) {
  const toml::node* node = s.table.get(key);
  if (!node) return;
  const auto* text = node->as_string();
  if (!text) {
    typeError(*node, key, s, R"(a string like "5s")");
    return;
  }
  std::string what = quote(text->get()) + " for \"" + std::string(key) + "\" in " + s.label;
  switch (parseDuration(text->get(), out)) {
    case DurationStatus::Ok:
      return;
    case DurationStatus::Malformed:
      return fail(node->source(), "bad duration " + what,
                  R"(a positive integer and a unit ms, s, m or h, like "250ms", "5s", "2m" or "1h")");
    case DurationStatus::Zero:
      return fail(node->source(), "zero duration " + what, R"(a positive duration like "250ms")");
    case DurationStatus::TooLong:
      return fail(node->source(), "duration " + what + " is too long",
                  R"(at most "720h" (30 days))");
  }
}

// Listener binds may use port 0 (the kernel picks; tests rely on it); a backend cannot be
// reached on port 0. Host names are not resolved: a config never depends on DNS at start-up.
std::optional<AddressSpec> Validator::readAddress(const toml::node& node, std::string_view key,
                                                  const Section& s, bool listener) {
  const auto* text = node.as_string();
  if (!text) {
    typeError(node, key, s, "an address string like " + std::string(kAddressForms));
    return std::nullopt;
  }
  std::string error;
  auto address = core::SocketAddress::parse(text->get(), &error);
  std::string what = "invalid address " + quote(text->get()) + " for \"" + std::string(key) +
                     "\" in " + s.label;
  if (!address) {
    if (!error.starts_with("expected")) what += " (" + error + ")";
    fail(node.source(), what, kAddressForms);
    return std::nullopt;
  }
  if (!listener && !address->isUnix() && address->port() == 0) {
    fail(node.source(), what + " (port 0)", "a port 1..65535 (port 0 is only for listener binds)");
    return std::nullopt;
  }
  return AddressSpec{text->get(), at(node.source())};
}

// `[[key]]` under `parent`: an array of tables (inline tables are fine too).
std::vector<const toml::table*> Validator::readTables(const Section& parent, std::string_view key,
                                                     std::string_view header) {
  std::vector<const toml::table*> tables;
  const toml::node* node = parent.table.get(key);
  if (!node) return tables;
  const auto* array = node->as_array();
  std::string expected = "an array of tables (" + std::string(header) + ")";
  if (!array) {
    typeError(*node, key, parent, expected);
    return tables;
  }
  for (const toml::node& element : *array) {
    if (const auto* table = element.as_table()) {
      tables.push_back(table);
    } else {
      typeError(element, key, parent, expected);
    }
  }
  return tables;
}

// Reads and checks `name`, returns the label for messages: `[[pool]] "api"`, or
// `[[pool]] #2` when the name is missing or unusable.
std::string Validator::readName(const toml::table& table, std::string_view header, size_t index,
                                std::string_view suffix, std::string& name,
                                std::map<std::string, std::string>& seen, std::string_view kind) {
  std::string fallback = std::string(header) + " #" + std::to_string(index + 1) + std::string(suffix);
  Section s{table, fallback};
  const toml::node* node = readString(s, "name", name);
  if (!node) {
    if (!table.contains("name")) {
      fail(table.source(), "missing required key \"name\" in " + fallback,
           "a name unique among " + std::string(kind) + "s");
    }
    return fallback;
  }
  bool valid = !name.empty() && name.size() <= kMaxNameBytes &&
               std::all_of(name.begin(), name.end(), [](char c) {
                 return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
               });
  if (!valid) {
    fail(node->source(), "invalid " + std::string(kind) + " name " + quote(name) + " in " + fallback,
         "1..64 letters, digits, '-', '_' or '.' (names appear in logs and metrics)");
    return fallback;
  }
  auto [it, inserted] = seen.emplace(name, at(node->source()));
  if (!inserted) {
    fail(node->source(),
         "duplicate " + std::string(kind) + " name " + quote(name) + " (first defined at " +
             it->second + ")",
         "unique " + std::string(kind) + " names");
  }
  return std::string(header) + " " + quote(name) + std::string(suffix);
}

void Validator::parseGlobal(const toml::table& root, GlobalConfig& out) {
  const toml::node* node = root.get("global");
  if (!node) return;
  const auto* table = node->as_table();
  if (!table) {
    typeError(*node, "global", Section{root, "the top-level table"}, "a table ([global])");
    return;
  }
  Section s{*table, "[global]"};
  checkKeys(s, kGlobalKeys);
  readUint(s, "workers", out.workers, 0, 1024);
  readUint(s, "max_connections", out.max_connections, 1, UINT32_MAX);
  readEnum(s, "log_level", out.log_level, kLogLevels);
  readString(s, "log_file", out.log_file);
  readBool(s, "access_log", out.access_log);
  readString(s, "access_log_file", out.access_log_file);
  readDuration(s, "drain_timeout", out.drain_timeout);
  readEnum(s, "relay", out.relay, kRelays);
  readUint(s, "buffer_size", out.buffer_size, 1024, 1024 * 1024);
  if (auto count = readInteger(s, "buffers_per_worker", 1, 32768, "a power of two 1..32768")) {
    if ((*count & (*count - 1)) != 0) {
      fail(table->get("buffers_per_worker")->source(),
           "buffers_per_worker = " + std::to_string(*count) + " in [global] is not a power of two",
           "a power of two 1..32768");
    } else {
      out.buffers_per_worker = static_cast<uint32_t>(*count);
    }
  }
  readUint(s, "max_queued_per_direction", out.max_queued_per_direction, 1, 1024);
  readString(s, "user", out.user);
  readString(s, "group", out.group);
  readEnum(s, "access_log_format", out.access_log_format, kAccessLogFormats);
  parseRuntimeSocket(s, out);
}

void Validator::parseListener(const toml::table& table, size_t index, ListenerConfig& out) {
  out.where = at(table.source());
  std::string label = readName(table, "[[listener]]", index, "", out.name, listener_names_, "listener");
  Section s{table, label};
  checkKeys(s, kListenerKeys);
  parseBinds(s, out);
  readEnum(s, "mode", out.mode, kModes);
  readUint(s, "max_connections", out.max_connections, 0, UINT32_MAX);
  readUint(s, "backlog", out.backlog, 1, 65535);
  readDuration(s, "client_hello_timeout", out.client_hello_timeout);
  readUint(s, "client_hello_max", out.client_hello_max, 1024, 65536);
  if (const toml::node* node = readString(s, "default_pool", out.default_pool)) {
    if (out.default_pool.empty()) {
      fail(node->source(), "empty default_pool in " + label, "a [[pool]] name, or no default_pool key");
    } else {
      pool_refs_.push_back({out.default_pool, node->source(), "default_pool of " + label});
    }
  }
  parseAcceptProxy(s, out);
  parseListenerTls(s, out);
  std::map<std::string, std::string> routes_seen;
  auto route_tables = readTables(s, "route", "[[listener.route]]");
  for (size_t i = 0; i < route_tables.size(); ++i) {
    parseRoute(*route_tables[i], i, out, routes_seen, out.routes.emplace_back());
  }
  const toml::node* routes = table.get("route");
  bool no_routes = !routes || (routes->is_array() && routes->as_array()->empty());
  if (no_routes && !table.contains("default_pool")) {
    fail(table.source(), label + " has no route and no default_pool",
         "at least one [[listener.route]] or a default_pool");
  }
  // "default" without a default_pool is valid: the router then alerts (config.h).
  readEnum(s, "on_no_sni", out.on_no_sni, kMissActions);
  readEnum(s, "on_not_tls", out.on_not_tls, kMissActions);
  readEnum(s, "on_no_match", out.on_no_match, kMissActions);
  checkListenerModes(s, out);
}

void Validator::parseBinds(const Section& s, ListenerConfig& out) {
  const toml::node* node = s.table.get("bind");
  std::string expected = R"(an array of addresses like ["127.0.0.1:443", "[::1]:443"])";
  if (!node) {
    fail(s.table.source(), "missing required key \"bind\" in " + s.label, expected);
    return;
  }
  const auto* array = node->as_array();
  if (!array) return typeError(*node, "bind", s, expected);
  if (array->empty()) return fail(node->source(), "empty \"bind\" in " + s.label, expected);
  for (const toml::node& element : *array) {
    auto address = readAddress(element, "bind", s, /*listener=*/true);
    if (!address) continue;
    // SO_REUSEPORT would let two listeners bind the same address and silently share its
    // connections, so a repeated address is an error here rather than at bind() time.
    std::string normalized = core::SocketAddress::parse(address->text)->toString();
    bool kernel_port = normalized.ends_with(":0") && !normalized.starts_with("unix:");
    if (!kernel_port) {
      auto [it, inserted] = binds_.emplace(normalized, address->where);
      if (!inserted) {
        fail(element.source(),
             "address " + quote(address->text) + " in " + s.label + " is already bound at " + it->second,
             "each listen address once");
      }
    }
    out.bind.push_back(std::move(*address));
  }
}

void Validator::parseRoute(const toml::table& table, size_t index, const ListenerConfig& listener,
                           std::map<std::string, std::string>& seen, RouteConfig& out) {
  out.where = at(table.source());
  std::string of = listener.name.empty() ? "" : " of listener " + quote(listener.name);
  Section s{table, "[[listener.route]] #" + std::to_string(index + 1) + of};
  checkKeys(s, kRouteKeys);
  out.mode = listener.mode;
  readEnum(s, "mode", out.mode, kModes);
  if (const toml::node* node = readString(s, "sni", out.sni)) {
    SniCheck check = out.sni.empty() ? SniCheck{"empty", "a host name, or no sni key to match any"}
                                     : checkSni(out.sni);
    if (!check.problem.empty()) {
      fail(node->source(), "invalid sni " + quote(out.sni) + " in " + s.label + ": " + check.problem,
           check.expected);
    }
    out.sni = lowerAscii(out.sni);
  }
  if (const toml::node* node = readString(s, "alpn", out.alpn)) {
    if (out.alpn.empty() || out.alpn.size() > 255) {
      fail(node->source(), "alpn " + quote(out.alpn) + " in " + s.label + " has " +
                               std::to_string(out.alpn.size()) + " bytes",
           R"(a protocol ID of 1..255 bytes like "h2" (RFC 7301), or no alpn key to match any)");
    }
  }
  if (const toml::node* node = readString(s, "pool", out.pool)) {
    pool_refs_.push_back({out.pool, node->source(), s.label});
  } else if (!table.contains("pool")) {
    fail(table.source(), "missing required key \"pool\" in " + s.label, "the [[pool]] name to route to");
  }
  std::string key = "sni " + quote(out.sni) + " alpn " + quote(out.alpn);
  auto [it, inserted] = seen.emplace(key, out.where);
  if (!inserted) {
    fail(table.source(), s.label + " repeats the route at " + it->second + " (" + key + ")",
         "each sni/alpn combination once per listener");
  }
}

void Validator::parsePool(const toml::table& table, size_t index, PoolConfig& out) {
  out.where = at(table.source());
  std::string label = readName(table, "[[pool]]", index, "", out.name, pool_names_, "pool");
  Section s{table, label};
  checkKeys(s, kPoolKeys);
  readEnum(s, "algorithm", out.algorithm, kAlgorithms);
  readEnum(s, "hash_key", out.hash_key, kHashKeys);
  readDuration(s, "connect_timeout", out.connect_timeout);
  readUint(s, "retries", out.retries, 0, 16);
  readDuration(s, "idle_timeout", out.idle_timeout);
  readEnum(s, "proxy_protocol", out.proxy_protocol, kProxyProtocols);
  readBool(s, "affinity", out.affinity);
  readUint(s, "affinity_max_entries", out.affinity_max_entries, 1, 1u << 24);
  readDuration(s, "affinity_ttl", out.affinity_ttl);
  parsePoolTls(s, out);
  parseHealth(s, out);
  parseLifecycle(s, out);

  std::map<std::string, std::string> names;
  std::map<std::string, std::string> addresses;
  auto backend_tables = readTables(s, "backend", "[[pool.backend]]");
  for (size_t i = 0; i < backend_tables.size(); ++i) {
    parseBackend(*backend_tables[i], i, out, names, addresses, out.backends.emplace_back());
  }
  std::string expected = "at least one [[pool.backend]] with a name and an address";
  if (!table.contains("backend")) {
    fail(table.source(), "missing required key \"backend\" in " + label, expected);
  } else if (table.get("backend")->is_array() && table.get("backend")->as_array()->empty()) {
    fail(table.get("backend")->source(), label + " has no backends", expected);
  } else if (!out.backends.empty() &&
             std::all_of(out.backends.begin(), out.backends.end(),
                         [](const BackendConfig& b) { return b.weight == 0; })) {
    fail(table.source(), "every backend in " + label + " has weight 0",
         "at least one backend with weight 1..256");
  } else if (!out.backends.empty() &&
             std::all_of(out.backends.begin(), out.backends.end(), [](const BackendConfig& b) { return b.backup; })) {
    fail(table.source(), "every backend in " + label + " is a backup",
         "at least one primary backend (backup = false)");
  }
  checkPoolAlgorithm(s, out);
}

void Validator::parseBackend(const toml::table& table, size_t index, const PoolConfig& pool,
                             std::map<std::string, std::string>& names,
                             std::map<std::string, std::string>& addresses, BackendConfig& out) {
  out.where = at(table.source());
  std::string of = pool.name.empty() ? "" : " of pool " + quote(pool.name);
  std::string label = readName(table, "[[pool.backend]]", index, of, out.name, names, "backend");
  Section s{table, label};
  checkKeys(s, kBackendKeys);
  readUint(s, "weight", out.weight, 0, 256);
  readBool(s, "backup", out.backup);
  if (const toml::node* node = readString(s, "tls_name", out.tls_name); node && !pool.tls.enabled) {
    fail(node->source(), "tls_name in " + label + " has no effect: the pool has no [pool.tls]",
         "a [pool.tls] table in the pool, or no tls_name");
  }
  const toml::node* node = table.get("address");
  if (!node) {
    fail(table.source(), "missing required key \"address\" in " + label,
         "an address like \"10.0.0.1:443\", \"[fd00::1]:443\" or \"unix:/run/app.sock\"");
    return;
  }
  auto address = readAddress(*node, "address", s, /*listener=*/false);
  if (!address) return;
  std::string normalized = core::SocketAddress::parse(address->text)->toString();
  auto [it, inserted] = addresses.emplace(normalized, address->where);
  if (!inserted) {
    fail(node->source(), "address " + quote(address->text) + " in " + label +
                             " repeats the backend at " + it->second,
         "each backend address once per pool (use weight for a larger share)");
  }
  out.address = std::move(*address);
}

void Validator::checkPoolAlgorithm(const Section& s, PoolConfig& out) {
  bool maglev = out.algorithm == Algorithm::Maglev;
  for (std::string_view key : {"hash_key"sv, "maglev_table_size"sv}) {
    if (!maglev && s.table.contains(key)) {
      fail(s.table.get(key)->source(), "\"" + std::string(key) + "\" in " + s.label +
                                           " has no effect without algorithm = \"maglev\"",
           "algorithm = \"maglev\", or no \"" + std::string(key) + "\" key");
    }
  }
  if (!maglev) return;
  std::string backends = std::to_string(out.backends.size());
  std::string expected = "a prime number greater than the number of backends (" + backends +
                         ") and at most " + std::to_string(kMaxMaglevTableSize) + ", like 65537";
  auto size = readInteger(s, "maglev_table_size", 1, kMaxMaglevTableSize, expected);
  if (!size) return;
  const toml::node* node = s.table.get("maglev_table_size");
  std::string what = "maglev_table_size = " + std::to_string(*size) + " in " + s.label;
  if (!isPrime(static_cast<uint32_t>(*size))) {
    fail(node->source(), what + " is not prime", expected);
  } else if (*size <= out.backends.size()) {
    fail(node->source(), what + " is not greater than the number of backends", expected);
  } else {
    out.maglev_table_size = static_cast<uint32_t>(*size);
  }
}

void Validator::checkPoolRefs(const Config& config) {
  std::vector<std::string_view> names;
  for (const PoolConfig& pool : config.pools) {
    if (!pool.name.empty()) names.push_back(pool.name);
  }
  std::string expected = names.empty() ? "a [[pool]] of that name (none is defined)"
                                       : "one of the [[pool]] names: " + join(names);
  for (const PoolRef& ref : pool_refs_) {
    if (!config.findPool(ref.pool)) {
      fail(ref.where, ref.user + " names unknown pool " + quote(ref.pool), expected);
    }
  }
}

std::optional<Config> Validator::run(std::string_view text, std::vector<std::string>& errors) {
  Config config;
  config.path = path_;
  try {
    toml::table root = toml::parse(text, std::string_view(path_));
    Section top{root, "the top-level table"};
    checkKeys(top, kTopKeys);
    parseGlobal(root, config.global);
    parseAdmin(root, config.admin);
    parseCryptoAsync(root, config);
    auto listeners = readTables(top, "listener", "[[listener]]");
    for (size_t i = 0; i < listeners.size(); ++i) {
      parseListener(*listeners[i], i, config.listeners.emplace_back());
    }
    if (!root.contains("listener")) {
      fail(root.source(), "no [[listener]] in the configuration", "at least one [[listener]]");
    }
    auto pools = readTables(top, "pool", "[[pool]]");
    for (size_t i = 0; i < pools.size(); ++i) parsePool(*pools[i], i, config.pools.emplace_back());
    checkPoolRefs(config);
  } catch (const toml::parse_error& e) {
    // toml++ descriptions mostly read "Error while parsing <what>: <why>".
    std::string description(e.description());
    if (description.starts_with("Error while")) {
      description = "TOML syntax error" + description.substr(5);
    } else {
      description = "TOML syntax error: " + description;
    }
    fail(e.source(), description, "valid TOML v1.0 (https://toml.io)");
  }
  std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
    return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
  });
  for (Problem& problem : problems_) errors.push_back(std::move(problem.text));
  if (!problems_.empty()) return std::nullopt;
  return config;
}

}  // namespace config_detail

using config_detail::Validator;

const PoolConfig* Config::findPool(std::string_view name) const {
  for (const PoolConfig& pool : pools) {
    if (pool.name == name) return &pool;
  }
  return nullptr;
}

std::optional<Config> parseConfig(std::string_view text, const std::string& path,
                                  std::vector<std::string>& errors) {
  return Validator(path).run(text, errors);
}

std::optional<Config> loadConfig(const std::string& path, std::vector<std::string>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(path + ": cannot open: " + std::strerror(errno) + "; expected a readable TOML file");
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    errors.push_back(path + ": cannot read: " + std::strerror(errno) + "; expected a readable TOML file");
    return std::nullopt;
  }
  return parseConfig(text.str(), path, errors);
}

}  // namespace ringlb::balancer
