#include "balancer/config.h"
#include "config_test_util.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace ringlb::balancer {
namespace {

using namespace std::chrono_literals;

using testing::contains;
using testing::joined;
using testing::parse;
using testing::Parsed;

// A valid config; tests append to its last table ([[pool.backend]], line 10).
constexpr std::string_view kMinimal = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"

[[pool]]
name = "api"

[[pool.backend]]
name = "api-1"
address = "10.0.0.1:443"
)";

// A listener routing to pool "api"; tests append a [[pool]] from line 6.
constexpr std::string_view kListener = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"

)";

// Parses `text` expecting failure; returns the errors.
std::vector<std::string> errorsOf(std::string_view text) {
  Parsed parsed = parse(text);
  EXPECT_FALSE(parsed.config.has_value()) << "config unexpectedly valid:\n" << text;
  return parsed.errors;
}

// The single error for `text`.
std::string errorOf(std::string_view text) {
  auto errors = errorsOf(text);
  EXPECT_EQ(errors.size(), 1u) << joined(errors);
  return errors.empty() ? "" : errors.front();
}

// ---------------------------------------------------------------------------------------
// The example configuration

TEST(ConfigTest, ExampleInternalVipConfigLoadsWithExpectedValues) {
  std::vector<std::string> errors;
  std::string path = RINGLB_SOURCE_DIR "/conf/internal-vip.toml";
  auto config = loadConfig(path, errors);
  ASSERT_TRUE(config.has_value()) << joined(errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(config->path, path);

  ASSERT_EQ(config->listeners.size(), 1u);
  const ListenerConfig& vip = config->listeners[0];
  EXPECT_EQ(vip.name, "internal-vip");
  ASSERT_EQ(vip.bind.size(), 2u);
  EXPECT_EQ(vip.bind[0].text, "127.0.0.1:8443");
  EXPECT_EQ(vip.bind[1].text, "[::1]:8443");
  EXPECT_EQ(vip.default_pool, "horizon");
  EXPECT_EQ(vip.on_no_sni, MissAction::Default);
  EXPECT_EQ(vip.on_not_tls, MissAction::Close);
  EXPECT_EQ(vip.on_no_match, MissAction::Alert);
  EXPECT_EQ(vip.client_hello_timeout, 5s);
  ASSERT_EQ(vip.routes.size(), 5u);
  EXPECT_EQ(vip.routes[0].sni, "keystone.internal.example.org");
  EXPECT_EQ(vip.routes[0].pool, "keystone");
  EXPECT_EQ(vip.routes[1].sni, "*.compute.internal.example.org");
  EXPECT_EQ(vip.routes[1].pool, "nova");
  EXPECT_EQ(vip.routes[2].alpn, "h2");
  EXPECT_EQ(vip.routes[2].pool, "glance-h2");
  EXPECT_EQ(vip.routes[3].alpn, "");

  ASSERT_EQ(config->pools.size(), 5u);
  const PoolConfig* keystone = config->findPool("keystone");
  ASSERT_NE(keystone, nullptr);
  EXPECT_EQ(keystone->algorithm, Algorithm::RoundRobin);
  ASSERT_EQ(keystone->backends.size(), 2u);
  EXPECT_EQ(keystone->backends[1].address.text, "[2001:db8::12]:5000");

  const PoolConfig* nova = config->findPool("nova");
  ASSERT_NE(nova, nullptr);
  EXPECT_EQ(nova->algorithm, Algorithm::LeastConn);
  EXPECT_EQ(nova->proxy_protocol, ProxyProtocol::V2);
  EXPECT_EQ(nova->idle_timeout, 1h);
  EXPECT_FALSE(nova->affinity);
  EXPECT_EQ(nova->backends[0].weight, 2u);

  const PoolConfig* glance_h2 = config->findPool("glance-h2");
  ASSERT_NE(glance_h2, nullptr);
  EXPECT_EQ(glance_h2->algorithm, Algorithm::Maglev);
  EXPECT_EQ(glance_h2->hash_key, HashKey::SniAndClientIp);
  EXPECT_EQ(glance_h2->maglev_table_size, 65537u);

  EXPECT_EQ(config->findPool("glance")->algorithm, Algorithm::PowerOfTwo);
  const PoolConfig* horizon = config->findPool("horizon");
  ASSERT_NE(horizon, nullptr);
  EXPECT_EQ(horizon->backends[0].address.text, "unix:/run/horizon/tls.sock");
  EXPECT_FALSE(horizon->backends[0].backup);
  EXPECT_TRUE(horizon->backends[1].backup);
  EXPECT_EQ(horizon->health.type, health::CheckType::Tcp);
  EXPECT_EQ(keystone->health.type, health::CheckType::Tls);
  EXPECT_EQ(keystone->health.tls.ca_file, "/etc/ringlb/pki/internal-ca.pem");
  EXPECT_FALSE(keystone->tls.enabled);  // passthrough data path, TLS check
  EXPECT_EQ(keystone->lifecycle.slow_start, std::chrono::seconds(30));
  EXPECT_EQ(config->global.runtime_socket, "/run/ringlb/admin.sock");
  EXPECT_TRUE(config->admin.enabled);
  EXPECT_EQ(config->findPool("swift"), nullptr);
}

TEST(ConfigTest, ExampleConfigWhereFieldsPointAtTheirTables) {
  std::vector<std::string> errors;
  std::string path = RINGLB_SOURCE_DIR "/conf/internal-vip.toml";
  auto config = loadConfig(path, errors);
  ASSERT_TRUE(config.has_value()) << joined(errors);
  // Every where is "path:line:column" and lies inside the file.
  auto check = [&](const std::string& where) {
    ASSERT_TRUE(where.starts_with(path + ":")) << where;
    EXPECT_NE(where.find(':', path.size() + 1), std::string::npos) << where;
  };
  check(config->listeners[0].where);
  check(config->listeners[0].bind[1].where);
  for (const auto& route : config->listeners[0].routes) check(route.where);
  for (const auto& pool : config->pools) {
    check(pool.where);
    for (const auto& backend : pool.backends) check(backend.where);
  }
}

// ---------------------------------------------------------------------------------------
// Values and defaults

// Interim: only `async` of [crypto] is parsed until the full [crypto] parser lands.
TEST(ConfigTest, CryptoAsyncIsReadAndOffByDefault) {
  Parsed off = parse(kMinimal);
  ASSERT_TRUE(off.config.has_value()) << joined(off.errors);
  EXPECT_FALSE(off.config->crypto.async);
  Parsed on = parse("[crypto]\nasync = true\n" + std::string(kMinimal));
  ASSERT_TRUE(on.config.has_value()) << joined(on.errors);
  EXPECT_TRUE(on.config->crypto.async);
  Parsed bad = parse("[crypto]\nasync = \"yes\"\n" + std::string(kMinimal));
  EXPECT_FALSE(bad.config.has_value());
}

TEST(ConfigTest, OmittedKeysTakeTheStructDefaults) {
  Parsed parsed = parse(kMinimal);
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const Config& config = *parsed.config;
  GlobalConfig global;
  EXPECT_EQ(config.global.workers, global.workers);
  EXPECT_EQ(config.global.max_connections, global.max_connections);
  EXPECT_EQ(config.global.log_level, global.log_level);
  EXPECT_EQ(config.global.access_log, global.access_log);
  EXPECT_EQ(config.global.drain_timeout, global.drain_timeout);
  EXPECT_EQ(config.global.relay, global.relay);
  EXPECT_EQ(config.global.buffer_size, global.buffer_size);
  EXPECT_EQ(config.global.buffers_per_worker, global.buffers_per_worker);
  EXPECT_EQ(config.global.max_queued_per_direction, global.max_queued_per_direction);

  ListenerConfig listener;
  const ListenerConfig& vip = config.listeners.at(0);
  EXPECT_EQ(vip.mode, listener.mode);
  EXPECT_EQ(vip.max_connections, listener.max_connections);
  EXPECT_EQ(vip.backlog, listener.backlog);
  EXPECT_EQ(vip.client_hello_timeout, listener.client_hello_timeout);
  EXPECT_EQ(vip.client_hello_max, listener.client_hello_max);
  EXPECT_EQ(vip.on_no_sni, listener.on_no_sni);
  EXPECT_EQ(vip.on_not_tls, listener.on_not_tls);
  EXPECT_EQ(vip.on_no_match, listener.on_no_match);
  EXPECT_TRUE(vip.routes.empty());
  EXPECT_EQ(vip.where, "t.toml:1:1");

  PoolConfig pool;
  const PoolConfig& api = config.pools.at(0);
  EXPECT_EQ(api.algorithm, pool.algorithm);
  EXPECT_EQ(api.hash_key, pool.hash_key);
  EXPECT_EQ(api.maglev_table_size, pool.maglev_table_size);
  EXPECT_EQ(api.connect_timeout, pool.connect_timeout);
  EXPECT_EQ(api.retries, pool.retries);
  EXPECT_EQ(api.idle_timeout, pool.idle_timeout);
  EXPECT_EQ(api.proxy_protocol, pool.proxy_protocol);
  EXPECT_EQ(api.affinity, pool.affinity);
  EXPECT_EQ(api.affinity_max_entries, pool.affinity_max_entries);
  EXPECT_EQ(api.affinity_ttl, pool.affinity_ttl);
  EXPECT_EQ(api.where, "t.toml:6:1");
  ASSERT_EQ(api.backends.size(), 1u);
  EXPECT_EQ(api.backends[0].weight, 1u);
  EXPECT_EQ(api.backends[0].where, "t.toml:9:1");
  EXPECT_EQ(api.backends[0].address.text, "10.0.0.1:443");
  EXPECT_EQ(api.backends[0].address.where, "t.toml:11:11");
  EXPECT_EQ(vip.bind.at(0).where, "t.toml:3:9");
}

TEST(ConfigTest, EveryGlobalKeyIsRead) {
  std::string text = R"([global]
workers = 8
max_connections = 5000
log_level = "debug"
log_file = "/var/log/ringlb.log"
access_log = false
access_log_file = "/var/log/ringlb-access.log"
drain_timeout = "30s"
relay = "splice"
buffer_size = 32768
buffers_per_worker = 2048
max_queued_per_direction = 8
)";
  Parsed parsed = parse(text + std::string(kMinimal));
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const GlobalConfig& global = parsed.config->global;
  EXPECT_EQ(global.workers, 8u);
  EXPECT_EQ(global.max_connections, 5000u);
  EXPECT_EQ(global.log_level, LogLevel::Debug);
  EXPECT_EQ(global.log_file, "/var/log/ringlb.log");
  EXPECT_FALSE(global.access_log);
  EXPECT_EQ(global.access_log_file, "/var/log/ringlb-access.log");
  EXPECT_EQ(global.drain_timeout, 30s);
  EXPECT_EQ(global.relay, RelayKind::Splice);
  EXPECT_EQ(global.buffer_size, 32768u);
  EXPECT_EQ(global.buffers_per_worker, 2048u);
  EXPECT_EQ(global.max_queued_per_direction, 8u);
}

TEST(ConfigTest, DurationsParseInEveryUnit) {
  Parsed parsed = parse(std::string(kListener) + R"([[pool]]
name = "api"
connect_timeout = "250ms"
idle_timeout = "2m"
affinity_ttl = "1h"
backend = [{ name = "a", address = "10.0.0.1:443" }]
[global]
drain_timeout = "5s"
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const PoolConfig& pool = parsed.config->pools.at(0);
  EXPECT_EQ(pool.connect_timeout, Millis(250));
  EXPECT_EQ(pool.idle_timeout, Millis(120000));
  EXPECT_EQ(pool.affinity_ttl, Millis(3600000));
  EXPECT_EQ(parsed.config->global.drain_timeout, Millis(5000));
}

TEST(ConfigTest, MalformedDurationsAreRejectedWithTheExpectedForm) {
  for (std::string_view bad : {"5", "5 s", "-1s", "1.5s", "5S", "s", "", "5sec", " 5s", "5d"}) {
    std::string text = std::string(kMinimal) + "[global]\ndrain_timeout = \"" + std::string(bad) + "\"\n";
    EXPECT_EQ(errorOf(text),
              "t.toml:13:17: bad duration \"" + std::string(bad) +
                  "\" for \"drain_timeout\" in [global]; expected a positive integer and a unit ms, "
                  "s, m or h, like \"250ms\", \"5s\", \"2m\" or \"1h\"")
        << bad;
  }
}

TEST(ConfigTest, ZeroAndHugeDurationsAreRejected) {
  std::string base = std::string(kMinimal) + "[global]\n";
  EXPECT_EQ(errorOf(base + "drain_timeout = \"0ms\"\n"),
            "t.toml:13:17: zero duration \"0ms\" for \"drain_timeout\" in [global]; expected a "
            "positive duration like \"250ms\"");
  EXPECT_TRUE(contains(errorOf(base + "drain_timeout = \"721h\"\n"), "is too long; expected at most \"720h\""));
  EXPECT_TRUE(contains(errorOf(base + "drain_timeout = \"99999999999999999999999s\"\n"), "is too long"));
  Parsed ok = parse(base + "drain_timeout = \"720h\"\n");
  ASSERT_TRUE(ok.config.has_value()) << joined(ok.errors);
  EXPECT_EQ(ok.config->global.drain_timeout, 720h);
}

TEST(ConfigTest, EnumsAcceptEveryDocumentedSpelling) {
  Parsed parsed = parse(std::string(kListener) + R"([[pool]]
name = "api"
algorithm = "power_of_two"
proxy_protocol = "v2"
backend = [{ name = "a", address = "10.0.0.1:443" }]
[[pool]]
name = "m"
algorithm = "maglev"
hash_key = "client_ip"
maglev_table_size = 251
backend = [{ name = "a", address = "10.0.0.1:443" }]
[global]
log_level = "off"
relay = "buffers"
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  EXPECT_EQ(parsed.config->pools[0].algorithm, Algorithm::PowerOfTwo);
  EXPECT_EQ(parsed.config->pools[0].proxy_protocol, ProxyProtocol::V2);
  EXPECT_EQ(parsed.config->pools[1].hash_key, HashKey::ClientIp);
  EXPECT_EQ(parsed.config->pools[1].maglev_table_size, 251u);
  EXPECT_EQ(parsed.config->global.log_level, LogLevel::Off);
  EXPECT_EQ(parsed.config->global.relay, RelayKind::Buffers);
}

TEST(ConfigTest, UnknownEnumValueListsTheAccepted) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"([[pool]]
name = "api"
algorithm = "rr"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"),
            "t.toml:8:13: unknown algorithm \"rr\" in [[pool]] \"api\"; expected one of: "
            "round_robin, least_conn, p2c, power_of_two, maglev");
  EXPECT_TRUE(contains(errorOf(std::string(kMinimal) + "[global]\nlog_level = \"loud\"\n"), "t.toml:13:13: unknown log_level \"loud\" in [global]; expected one of: "
                        "trace, debug, info, warn, error, off"));
}

// ---------------------------------------------------------------------------------------
// Error classes

TEST(ConfigTest, UnknownKeyIsReportedWithPosition) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"([[pool]]
name = "api"
conect_timeout = "5s"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"),
            "t.toml:8:1: unknown key \"conect_timeout\" in [[pool]] \"api\"; expected one of: name, "
            "algorithm, hash_key, maglev_table_size, connect_timeout, retries, idle_timeout, "
            "proxy_protocol, affinity, affinity_max_entries, affinity_ttl, backend, tls, health, "
            "eject_after, eject_for, eject_max, slow_start");
}

TEST(ConfigTest, UnknownKeysAreReportedInEveryTable) {
  auto errors = errorsOf(R"(pools = 1
[global]
  worker = 4
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
binds = []
[[listener.route]]
sni = "a.example.org"
pol = "api"
pool = "api"
[[pool]]
name = "api"
[[pool.backend]]
name = "a"
adress = "10.0.0.1:1"
address = "10.0.0.1:443"
)");
  ASSERT_EQ(errors.size(), 5u) << joined(errors);
  EXPECT_TRUE(contains(errors[0], "t.toml:1:1: unknown key \"pools\" in the top-level table; "
                                   "expected one of: global, admin, crypto, listener, pool"));
  EXPECT_TRUE(contains(errors[1], "t.toml:3:3: unknown key \"worker\" in [global]"));
  EXPECT_TRUE(contains(errors[2], "t.toml:7:1: unknown key \"binds\" in [[listener]] \"vip\""));
  EXPECT_EQ(errors[3], "t.toml:10:1: unknown key \"pol\" in [[listener.route]] #1 of listener "
                       "\"vip\"; expected one of: sni, alpn, pool, mode");
  EXPECT_EQ(errors[4], "t.toml:16:1: unknown key \"adress\" in [[pool.backend]] \"a\" of pool "
                       "\"api\"; expected one of: name, address, weight, tls_name, backup");
}

TEST(ConfigTest, SyntaxErrorIsReportedWithItsSourcePosition) {
  auto errors = errorsOf("[global]\nworkers = 4\nlog_level = \"info\nrelay = \"auto\"\n");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(contains(errors[0], "t.toml:3:"));
  EXPECT_TRUE(contains(errors[0], ": TOML syntax error while parsing"));
  EXPECT_TRUE(contains(errors[0], "; expected valid TOML v1.0"));

  errors = errorsOf("[global]\nlog_file = \"\xff\"\n");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(errors[0].starts_with("t.toml:2:")) << errors[0];
  EXPECT_TRUE(contains(errors[0], ": TOML syntax error: ")) << errors[0];

  errors = errorsOf("[global]\nworkers = 4\nworkers = 5\n");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(errors[0].starts_with("t.toml:3:")) << errors[0];
  EXPECT_TRUE(contains(errors[0], "workers"));
}

TEST(ConfigTest, WrongTypeNamesTheExpectedAndTheActualType) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"([[pool]]
name = "api"
connect_timeout = 5
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"),
            "t.toml:8:19: wrong type for \"connect_timeout\" in [[pool]] \"api\"; expected a string "
            "like \"5s\", got integer");
  std::string base = std::string(kMinimal) + "[global]\n";
  EXPECT_EQ(errorOf(base + "workers = \"4\"\n"),
            "t.toml:13:11: wrong type for \"workers\" in [global]; expected an integer 0..1024, got "
            "string");
  EXPECT_EQ(errorOf(base + "access_log = \"yes\"\n"),
            "t.toml:13:14: wrong type for \"access_log\" in [global]; expected true or false, got "
            "string");
  EXPECT_TRUE(contains(errorOf(base + "workers = 1.5\n"), "got float"));
  EXPECT_TRUE(contains(errorOf(base + "log_file = 3\n"), "expected a string, got integer"));
  EXPECT_TRUE(contains(errorOf(base + "relay = true\n"), "expected a string, one of: auto, buffers, splice, got boolean"));
}

TEST(ConfigTest, SingleTableWhereAnArrayOfTablesBelongsIsAWrongType) {
  auto errors = errorsOf(R"([listener]
name = "vip"
bind = ["127.0.0.1:0"]
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:1:1: wrong type for \"listener\" in the top-level table; expected "
                       "an array of tables ([[listener]]), got table");
  EXPECT_TRUE(contains(errorOf(R"([[listener]]
name = "vip"
bind = "127.0.0.1:443"
default_pool = "api"
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"), "t.toml:3:8: wrong type for \"bind\" in [[listener]] \"vip\"; expected an "
                        "array of addresses like [\"127.0.0.1:443\", \"[::1]:443\"], got string"));
}

TEST(ConfigTest, MissingRequiredKeysAreReportedAtTheirTable) {
  auto errors = errorsOf(R"([[listener]]
default_pool = "empty"
[[pool]]
[[pool.backend]]
weight = 2
[[pool]]
name = "empty"
)");
  ASSERT_EQ(errors.size(), 6u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:1:1: missing required key \"name\" in [[listener]] #1; expected a "
                       "name unique among listeners");
  EXPECT_EQ(errors[1], "t.toml:1:1: missing required key \"bind\" in [[listener]] #1; expected an "
                       "array of addresses like [\"127.0.0.1:443\", \"[::1]:443\"]");
  EXPECT_EQ(errors[2], "t.toml:3:1: missing required key \"name\" in [[pool]] #1; expected a name "
                       "unique among pools");
  EXPECT_EQ(errors[3], "t.toml:4:1: missing required key \"name\" in [[pool.backend]] #1; "
                       "expected a name unique among backends");
  EXPECT_EQ(errors[4], "t.toml:4:1: missing required key \"address\" in [[pool.backend]] #1; "
                       "expected an address like \"10.0.0.1:443\", \"[fd00::1]:443\" or "
                       "\"unix:/run/app.sock\"");
  EXPECT_EQ(errors[5], "t.toml:6:1: missing required key \"backend\" in [[pool]] \"empty\"; "
                       "expected at least one [[pool.backend]] with a name and an address");
}

TEST(ConfigTest, EmptyDocumentNeedsAListener) {
  EXPECT_EQ(errorOf(""), "t.toml:1:1: no [[listener]] in the configuration; expected at least one [[listener]]");
}

TEST(ConfigTest, EmptyBindAndBackendArraysAreRejected) {
  auto errors = errorsOf(R"([[listener]]
name = "vip"
bind = []
default_pool = "api"
[[pool]]
name = "api"
backend = []
)");
  ASSERT_EQ(errors.size(), 2u) << joined(errors);
  EXPECT_TRUE(contains(errors[0], "t.toml:3:8: empty \"bind\" in [[listener]] \"vip\""));
  EXPECT_EQ(errors[1], "t.toml:7:11: [[pool]] \"api\" has no backends; expected at least one "
                       "[[pool.backend]] with a name and an address");
}

TEST(ConfigTest, DuplicateNamesReportBothLocations) {
  auto errors = errorsOf(R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"
[[listener]]
name = "vip"
bind = ["127.0.0.2:0"]
default_pool = "api"
[[pool]]
name = "api"
[[pool.backend]]
name = "a"
address = "10.0.0.1:443"
[[pool.backend]]
name = "a"
address = "10.0.0.2:443"
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)");
  ASSERT_EQ(errors.size(), 3u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:6:8: duplicate listener name \"vip\" (first defined at t.toml:2:8); "
                       "expected unique listener names");
  EXPECT_EQ(errors[1], "t.toml:15:8: duplicate backend name \"a\" (first defined at t.toml:12:8); "
                       "expected unique backend names");
  EXPECT_EQ(errors[2], "t.toml:18:8: duplicate pool name \"api\" (first defined at t.toml:10:8); "
                       "expected unique pool names");
}

TEST(ConfigTest, SameBackendNameInTwoPoolsIsFine) {
  Parsed parsed = parse(std::string(kMinimal) + R"([[pool]]
name = "other"
backend = [{ name = "api-1", address = "10.0.0.1:443" }]
)");
  EXPECT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
}

TEST(ConfigTest, InvalidNamesAreRejected) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"([[pool]]
name = "api"
backend = [{ name = "a b", address = "10.0.0.1:443" }]
)"),
            "t.toml:8:21: invalid backend name \"a b\" in [[pool.backend]] #1 of pool \"api\"; "
            "expected 1..64 letters, digits, '-', '_' or '.' (names appear in logs and metrics)");
}

TEST(ConfigTest, RoutesAndDefaultPoolNamingUnknownPoolsAreReported) {
  auto errors = errorsOf(R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "horizon"
[[listener.route]]
sni = "nova.example.org"
pool = "nvoa"
[[pool]]
name = "nova"
backend = [{ name = "a", address = "10.0.0.1:443" }]
[[pool]]
name = "keystone"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)");
  ASSERT_EQ(errors.size(), 2u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:4:16: default_pool of [[listener]] \"vip\" names unknown pool "
                       "\"horizon\"; expected one of the [[pool]] names: nova, keystone");
  EXPECT_EQ(errors[1], "t.toml:7:8: [[listener.route]] #1 of listener \"vip\" names unknown pool "
                       "\"nvoa\"; expected one of the [[pool]] names: nova, keystone");
}

TEST(ConfigTest, PoolReferencedByNothingIsFine) {
  Parsed parsed = parse(std::string(kMinimal) + R"([[pool]]
name = "spare"
backend = [{ name = "s", address = "10.0.0.9:443" }]
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  EXPECT_NE(parsed.config->findPool("spare"), nullptr);
}

TEST(ConfigTest, InvalidWildcardsAreRejected) {
  struct Case {
    std::string_view sni;
    std::string_view problem;
  };
  const Case cases[] = {
      {"*", "\"*\" is allowed only as the whole first label"},
      {"a.*.org", "\"*\" is allowed only as the whole first label"},
      {"*foo.example.org", "\"*\" is allowed only as the whole first label"},
      {"*.*.example.org", "\"*\" is allowed only as the whole first label"},
      {"*.org", "too few labels after \"*.\""},
  };
  for (const Case& c : cases) {
    std::string text = std::string(kMinimal) + "[[listener.route]]\nsni = \"" + std::string(c.sni) +
                       "\"\npool = \"api\"\n";
    // Appended after [[pool.backend]], [[listener.route]] still belongs to the last listener.
    EXPECT_EQ(errorOf(text), "t.toml:13:7: invalid sni \"" + std::string(c.sni) +
                                 "\" in [[listener.route]] #1 of listener \"vip\": " +
                                 std::string(c.problem) +
                                 "; expected \"*.\" followed by at least two labels, like "
                                 "\"*.example.org\"")
        << c.sni;
  }
}

TEST(ConfigTest, ValidWildcardAndMixedCaseSniAreStoredLowerCase) {
  Parsed parsed = parse(std::string(kMinimal) + R"([[listener.route]]
sni = "*.Compute.Example.ORG"
pool = "api"
[[listener.route]]
sni = "Keystone.example.org"
alpn = "h2"
pool = "api"
[[listener.route]]
alpn = "http/1.1"
pool = "api"
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const auto& routes = parsed.config->listeners.at(0).routes;
  ASSERT_EQ(routes.size(), 3u);
  EXPECT_EQ(routes[0].sni, "*.compute.example.org");
  EXPECT_EQ(routes[0].where, "t.toml:12:1");
  EXPECT_EQ(routes[1].sni, "keystone.example.org");
  EXPECT_EQ(routes[1].alpn, "h2");
  EXPECT_EQ(routes[2].sni, "");
  EXPECT_EQ(routes[2].alpn, "http/1.1");
}

TEST(ConfigTest, SniMustBeAHostName) {
  struct Case {
    std::string sni;
    std::string_view problem;
  };
  std::string label_64(64, 'a');
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  long_name += "org";
  const Case cases[] = {
      {"api_1.example.org", "character \"_\" is not allowed in a host name"},
      {"api.example.org.", "a trailing dot is never sent in SNI"},
      {"api..example.org", "empty label"},
      {"-api.example.org", "label starts or ends with '-'"},
      {"192.0.2.1", "an IP address is never sent in SNI (RFC 6066 section 3)"},
      {label_64 + ".org", "label longer than 63 bytes"},
      {long_name, "longer than 253 bytes"},
      {"", "empty"},
  };
  for (const Case& c : cases) {
    std::string text = std::string(kMinimal) + "[[listener.route]]\nsni = \"" + std::string(c.sni) +
                       "\"\npool = \"api\"\n";
    std::string error = errorOf(text);
    EXPECT_TRUE(error.starts_with("t.toml:13:7: invalid sni \"" + std::string(c.sni) +
                                  "\" in [[listener.route]] #1 of listener \"vip\": " +
                                  std::string(c.problem) + "; expected "))
        << error;
  }
}

TEST(ConfigTest, NonAsciiSniAsksForTheALabel) {
  std::string text = std::string(kMinimal) +
                     "[[listener.route]]\nsni = \"b\xc3\xbc" "cher.example.org\"\npool = \"api\"\n";
  EXPECT_EQ(errorOf(text),
            "t.toml:13:7: invalid sni \"b\\xc3\\xbccher.example.org\" in [[listener.route]] #1 "
            "of listener \"vip\": non-ASCII character; expected the A-label (punycode \"xn--...\") "
            "form, which is what SNI carries");
}

TEST(ConfigTest, AlpnMustBe1To255Bytes) {
  std::string base = std::string(kMinimal) + "[[listener.route]]\nsni = \"a.example.org\"\npool = \"api\"\n";
  EXPECT_EQ(errorOf(base + "alpn = \"\"\n"),
            "t.toml:15:8: alpn \"\" in [[listener.route]] #1 of listener \"vip\" has 0 bytes; "
            "expected a protocol ID of 1..255 bytes like \"h2\" (RFC 7301), or no alpn key to "
            "match any");
  EXPECT_TRUE(contains(errorOf(base + "alpn = \"" + std::string(256, 'x') + "\"\n"), "has 256 bytes"));
  EXPECT_TRUE(parse(base + "alpn = \"" + std::string(255, 'x') + "\"\n").config.has_value());
}

TEST(ConfigTest, RouteWithoutPoolIsRejected) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + R"([[listener.route]]
sni = "a.example.org"
)"),
            "t.toml:12:1: missing required key \"pool\" in [[listener.route]] #1 of listener "
            "\"vip\"; expected the [[pool]] name to route to");
}

// A route with neither sni nor alpn is the router's catch-all; a second one is unreachable.
TEST(ConfigTest, OneCatchAllRouteIsAcceptedButNotTwo) {
  std::string one = std::string(kMinimal) + "[[listener.route]]\npool = \"api\"\n";
  Parsed parsed = parse(one);
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  EXPECT_EQ(parsed.config->listeners[0].routes.at(0).sni, "");
  EXPECT_EQ(parsed.config->listeners[0].routes.at(0).alpn, "");
  EXPECT_EQ(errorOf(one + "[[listener.route]]\npool = \"api\"\n"),
            "t.toml:14:1: [[listener.route]] #2 of listener \"vip\" repeats the route at "
            "t.toml:12:1 (sni \"\" alpn \"\"); expected each sni/alpn combination once per "
            "listener");
}

TEST(ConfigTest, RepeatedRouteIsReportedWithTheFirst) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + R"([[listener.route]]
sni = "a.example.org"
pool = "api"
[[listener.route]]
sni = "A.example.org"
pool = "api"
)"),
            "t.toml:15:1: [[listener.route]] #2 of listener \"vip\" repeats the route at t.toml:12:1 "
            "(sni \"a.example.org\" alpn \"\"); expected each sni/alpn combination once per listener");
}

TEST(ConfigTest, ListenerWithoutRoutesOrDefaultPoolIsRejected) {
  EXPECT_EQ(errorOf(R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"),
            "t.toml:1:1: [[listener]] \"vip\" has no route and no default_pool; expected at least "
            "one [[listener.route]] or a default_pool");
}

// "default" with no default_pool is left to the router (config.h: it then alerts), so the
// parser accepts it, explicit or not.
TEST(ConfigTest, MissActionsAreReadAndDefaultNeedsNoDefaultPool) {
  Parsed parsed = parse(R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
on_no_sni = "alert"
on_not_tls = "default"
on_no_match = "close"
[[listener.route]]
sni = "a.example.org"
pool = "api"
[[listener]]
name = "v2"
bind = ["127.0.0.1:1"]
on_no_sni = "default"
on_no_match = "default"
[[listener.route]]
alpn = "h2"
pool = "api"
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const auto& listeners = parsed.config->listeners;
  EXPECT_EQ(listeners[0].on_no_sni, MissAction::Alert);
  EXPECT_EQ(listeners[0].on_not_tls, MissAction::Default);
  EXPECT_EQ(listeners[0].on_no_match, MissAction::Close);
  EXPECT_EQ(listeners[1].on_no_sni, MissAction::Default);
  EXPECT_EQ(listeners[1].on_not_tls, ListenerConfig{}.on_not_tls);
  EXPECT_EQ(listeners[1].on_no_match, MissAction::Default);
  EXPECT_EQ(errorOf(std::string(kListener) + "on_no_sni = \"drop\"\n" +
                    "[[pool]]\nname = \"api\"\nbackend = [{ name = \"a\", address = \"10.0.0.1:443\" }]\n"),
            "t.toml:6:13: unknown on_no_sni \"drop\" in [[listener]] \"vip\"; expected one of: "
            "default, close, alert");
}

TEST(ConfigTest, IntegerRangesAreEnforced) {
  struct Case {
    std::string_view line;
    std::string_view error;
  };
  const Case cases[] = {
      {"workers = 1025", "workers = 1025 in [global] is out of range; expected an integer 0..1024"},
      {"workers = -1", "workers = -1 in [global] is out of range; expected an integer 0..1024"},
      {"buffer_size = 1023",
       "buffer_size = 1023 in [global] is out of range; expected an integer 1024..1048576"},
      {"buffer_size = 1048577",
       "buffer_size = 1048577 in [global] is out of range; expected an integer 1024..1048576"},
      {"buffers_per_worker = 3000",
       "buffers_per_worker = 3000 in [global] is not a power of two; expected a power of two "
       "1..32768"},
      {"buffers_per_worker = 65536",
       "buffers_per_worker = 65536 in [global] is out of range; expected a power of two 1..32768"},
      {"buffers_per_worker = 0",
       "buffers_per_worker = 0 in [global] is out of range; expected a power of two 1..32768"},
      {"max_connections = 0",
       "max_connections = 0 in [global] is out of range; expected an integer 1..4294967295"},
  };
  for (const Case& c : cases) {
    std::string text = std::string(kMinimal) + "[global]\n" + std::string(c.line) + "\n";
    std::string error = errorOf(text);
    EXPECT_TRUE(error.starts_with("t.toml:13:")) << error;
    EXPECT_TRUE(contains(error, std::string(c.error))) << c.line;
  }
  for (std::string_view good : {"workers = 0", "workers = 1024", "buffers_per_worker = 1",
                                "buffers_per_worker = 32768", "buffer_size = 1024",
                                "buffer_size = 1048576"}) {
    Parsed parsed = parse(std::string(kMinimal) + "[global]\n" + std::string(good) + "\n");
    EXPECT_TRUE(parsed.config.has_value()) << good << "\n" << joined(parsed.errors);
  }
}

TEST(ConfigTest, BackendWeightIs0To256AndOneMustBePositive) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + "weight = 257\n"),
            "t.toml:12:10: weight = 257 in [[pool.backend]] \"api-1\" of pool \"api\" is out of "
            "range; expected an integer 0..256");
  Parsed max_weight = parse(std::string(kMinimal) + "weight = 256\n");
  ASSERT_TRUE(max_weight.config.has_value()) << joined(max_weight.errors);
  EXPECT_EQ(max_weight.config->pools[0].backends[0].weight, 256u);
  EXPECT_EQ(errorOf(std::string(kMinimal) + "weight = 0\n"),
            "t.toml:6:1: every backend in [[pool]] \"api\" has weight 0; expected at least one "
            "backend with weight 1..256");
  Parsed one_zero = parse(std::string(kMinimal) + "weight = 0\n" +
                          "[[pool.backend]]\nname = \"api-2\"\naddress = \"10.0.0.2:443\"\n");
  ASSERT_TRUE(one_zero.config.has_value()) << joined(one_zero.errors);
  EXPECT_EQ(one_zero.config->pools[0].backends[0].weight, 0u);
}

TEST(ConfigTest, MaglevTableSizeMustBePrimeAndLargerThanTheBackendCount) {
  std::string pool = std::string(kListener) + R"([[pool]]
name = "api"
algorithm = "maglev"
backend = [{ name = "a", address = "10.0.0.1:443" }, { name = "b", address = "10.0.0.2:443" },
           { name = "c", address = "10.0.0.3:443" }]
)";
  EXPECT_EQ(errorOf(pool + "maglev_table_size = 65536\n"),
            "t.toml:11:21: maglev_table_size = 65536 in [[pool]] \"api\" is not prime; expected a "
            "prime number greater than the number of backends (3) and at most 16777213, like 65537");
  EXPECT_TRUE(contains(errorOf(pool + "maglev_table_size = 3\n"), "t.toml:11:21: maglev_table_size = 3 in [[pool]] \"api\" is not greater "
                        "than the number of backends; expected a prime number greater than the "
                        "number of backends (3)"));
  EXPECT_TRUE(contains(errorOf(pool + "maglev_table_size = 16777259\n"), "is out of range"));
  Parsed ok = parse(pool + "maglev_table_size = 5\n");
  ASSERT_TRUE(ok.config.has_value()) << joined(ok.errors);
  EXPECT_EQ(ok.config->pools[0].maglev_table_size, 5u);
}

TEST(ConfigTest, MaglevOnlyKeysWithAnotherAlgorithmAreRejected) {
  auto errors = errorsOf(std::string(kListener) + R"([[pool]]
name = "api"
algorithm = "least_conn"
hash_key = "sni"
maglev_table_size = 65537
backend = [{ name = "a", address = "10.0.0.1:443" }]
)");
  ASSERT_EQ(errors.size(), 2u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:9:12: \"hash_key\" in [[pool]] \"api\" has no effect without "
                       "algorithm = \"maglev\"; expected algorithm = \"maglev\", or no \"hash_key\" key");
  EXPECT_TRUE(contains(errors[1], "t.toml:10:21: \"maglev_table_size\" in [[pool]] \"api\""));
}

// ---------------------------------------------------------------------------------------
// Addresses

TEST(ConfigTest, Ipv6AndUnixAddressesAreAccepted) {
  Parsed parsed = parse(R"([[listener]]
name = "vip"
bind = ["[::]:0", "[fd00::1]:8443", "0.0.0.0:443", "unix:/run/ringlb/vip.sock"]
default_pool = "api"
[[pool]]
name = "api"
[[pool.backend]]
name = "v6"
address = "[2001:db8::1]:443"
[[pool.backend]]
name = "local"
address = "unix:/run/app/tls.sock"
)");
  ASSERT_TRUE(parsed.config.has_value()) << joined(parsed.errors);
  const auto& bind = parsed.config->listeners[0].bind;
  ASSERT_EQ(bind.size(), 4u);
  EXPECT_EQ(bind[0].text, "[::]:0");
  EXPECT_EQ(bind[3].text, "unix:/run/ringlb/vip.sock");
  EXPECT_EQ(bind[1].where, "t.toml:3:19");
  const auto& backends = parsed.config->pools[0].backends;
  EXPECT_EQ(backends[0].address.text, "[2001:db8::1]:443");
  EXPECT_EQ(backends[1].address.text, "unix:/run/app/tls.sock");
  EXPECT_EQ(backends[1].address.where, "t.toml:12:11");
}

TEST(ConfigTest, BadAddressesAreReportedWithTheAcceptedForms) {
  auto errors = errorsOf(R"([[listener]]
name = "vip"
bind = ["localhost:443", "[::1]", "127.0.0.1:99999", "unix:", 443]
default_pool = "api"
[[pool]]
name = "api"
[[pool.backend]]
name = "a"
address = "10.0.0.1:0"
[[pool.backend]]
name = "b"
address = "[::1]:0"
)");
  ASSERT_EQ(errors.size(), 7u) << joined(errors);
  EXPECT_EQ(errors[0], "t.toml:3:9: invalid address \"localhost:443\" for \"bind\" in [[listener]] "
                       "\"vip\" (\"localhost\" is not a numeric IPv4 or IPv6 address (host names "
                       "are not resolved)); expected \"IPv4:port\", \"[IPv6]:port\" or \"unix:/path\"");
  EXPECT_EQ(errors[1], "t.toml:3:26: invalid address \"[::1]\" for \"bind\" in [[listener]] \"vip\"; "
                       "expected \"IPv4:port\", \"[IPv6]:port\" or \"unix:/path\"");
  EXPECT_TRUE(contains(errors[2], "t.toml:3:35: invalid address \"127.0.0.1:99999\""));
  EXPECT_TRUE(contains(errors[3], "t.toml:3:54: invalid address \"unix:\""));
  EXPECT_TRUE(contains(errors[4], "t.toml:3:63: wrong type for \"bind\" in [[listener]] \"vip\"; "
                                   "expected an address string like"));
  EXPECT_EQ(errors[5], "t.toml:9:11: invalid address \"10.0.0.1:0\" for \"address\" in "
                       "[[pool.backend]] \"a\" of pool \"api\" (port 0); expected a port 1..65535 "
                       "(port 0 is only for listener binds)");
  EXPECT_TRUE(contains(errors[6], "t.toml:12:11: invalid address \"[::1]:0\""));
}

TEST(ConfigTest, SameBindAddressTwiceIsRejectedButPortZeroIsNot) {
  EXPECT_EQ(errorOf(R"([[listener]]
name = "a"
bind = ["127.0.0.1:8443", "127.0.0.1:0", "[::1]:0"]
default_pool = "api"
[[listener]]
name = "b"
bind = ["127.0.0.1:0", "[0:0::1]:0", "[0::1]:8443", "[::1]:8443"]
default_pool = "api"
[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)"),
            "t.toml:7:53: address \"[::1]:8443\" in [[listener]] \"b\" is already bound at "
            "t.toml:7:38; expected each listen address once");
}

TEST(ConfigTest, SameBackendAddressTwiceInAPoolIsRejected) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + R"([[pool.backend]]
name = "api-2"
address = "10.0.0.1:443"
)"),
            "t.toml:14:11: address \"10.0.0.1:443\" in [[pool.backend]] \"api-2\" of pool \"api\" "
            "repeats the backend at t.toml:11:11; expected each backend address once per pool (use "
            "weight for a larger share)");
}

// ---------------------------------------------------------------------------------------
// Several errors, files

TEST(ConfigTest, AllErrorsAreReportedInFileOrder) {
  auto errors = errorsOf(R"([global]
workers = 5000
drain_timeout = "5"
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
[[listener.route]]
sni = "*"
pool = "nope"
[[pool]]
name = "api"
algorithm = "round-robin"
[[pool.backend]]
name = "a"
address = "10.0.0.1:0"
weight = 300
)");
  ASSERT_EQ(errors.size(), 7u) << joined(errors);
  EXPECT_TRUE(errors[0].starts_with("t.toml:2:11: workers = 5000")) << errors[0];
  EXPECT_TRUE(errors[1].starts_with("t.toml:3:17: bad duration \"5\"")) << errors[1];
  EXPECT_TRUE(errors[2].starts_with("t.toml:8:7: invalid sni \"*\"")) << errors[2];
  EXPECT_TRUE(errors[3].starts_with("t.toml:9:8: [[listener.route]] #1 of listener \"vip\" names "
                                    "unknown pool \"nope\"; expected one of the [[pool]] names: api"))
      << errors[3];
  EXPECT_TRUE(errors[4].starts_with("t.toml:12:13: unknown algorithm \"round-robin\"")) << errors[4];
  EXPECT_TRUE(errors[5].starts_with("t.toml:15:11: invalid address \"10.0.0.1:0\"")) << errors[5];
  EXPECT_TRUE(errors[6].starts_with("t.toml:16:10: weight = 300")) << errors[6];
}

TEST(ConfigTest, ErrorsNameTheFilePathGiven) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parseConfig("[global]\nworkers = true\n", "conf/x.toml", errors).has_value());
  ASSERT_EQ(errors.size(), 2u) << joined(errors);
  EXPECT_TRUE(errors[0].starts_with("conf/x.toml:1:1: no [[listener]]")) << errors[0];
  EXPECT_TRUE(errors[1].starts_with("conf/x.toml:2:11: wrong type for \"workers\"")) << errors[1];
}

TEST(ConfigTest, MissingFileIsReported) {
  std::vector<std::string> errors;
  EXPECT_FALSE(loadConfig("/nonexistent/ringlb.toml", errors).has_value());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/nonexistent/ringlb.toml: cannot open: No such file or directory; expected "
                       "a readable TOML file");
}

TEST(ConfigTest, LoadConfigReadsAFileFromDisk) {
  std::string path = ::testing::TempDir() + "ringlb_config_test.toml";
  {
    std::ofstream out(path);
    out << kMinimal << "weight = 7\n";
  }
  std::vector<std::string> errors;
  auto config = loadConfig(path, errors);
  std::remove(path.c_str());
  ASSERT_TRUE(config.has_value()) << joined(errors);
  EXPECT_EQ(config->pools[0].backends[0].weight, 7u);
  EXPECT_EQ(config->pools[0].where, path + ":6:1");
}

}  // namespace
}  // namespace ringlb::balancer
