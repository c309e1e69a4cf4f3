// [pool.health], the pool lifecycle keys, backup backends, [admin], the runtime socket and the
// access log format.
#include <gtest/gtest.h>

#include <string>

#include "balancer/config.h"
#include "config_test_util.h"

namespace ringlb::balancer {
namespace {

using namespace std::chrono_literals;
using testing::contains;
using testing::joined;
using testing::parse;

// One listener to pool "api"; `pool` is appended to the [[pool]] table before its backends.
std::string withPool(std::string_view pool, std::string_view top = "", std::string_view backend_extra = "") {
  std::string text(top);
  text += R"(
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"

[[pool]]
name = "api"
)";
  text += pool;
  text += "\n[[pool.backend]]\nname = \"a\"\naddress = \"10.0.0.1:443\"\n";
  text += "[[pool.backend]]\nname = \"b\"\naddress = \"10.0.0.2:443\"\n";
  text += backend_extra;
  return text;
}

TEST(ConfigHealthTest, HttpCheckWithEveryKey) {
  auto p = parse(withPool(R"(slow_start = "30s"
eject_after = 5
eject_for = "2s"
eject_max = "20s"
[pool.health]
type = "http"
interval = "1s"
fast_interval = "200ms"
timeout = "500ms"
rise = 3
fall = 2
port = 8080
method = "HEAD"
path = "/healthcheck"
host = "keystone.internal"
headers = ["X-Check: ringlb"]
expect_status = ["2xx", "301", "400-404"]
expect_body = "ok"
)"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  const PoolConfig& pool = p.config->pools[0];
  const health::CheckConfig& h = pool.health;
  EXPECT_EQ(h.type, health::CheckType::Http);
  EXPECT_EQ(h.interval, 1000ms);
  EXPECT_EQ(h.fast_interval, 200ms);
  EXPECT_EQ(h.timeout, 500ms);
  EXPECT_EQ(h.rise, 3u);
  EXPECT_EQ(h.fall, 2u);
  EXPECT_EQ(h.port, 8080);
  EXPECT_EQ(h.http.method, "HEAD");
  EXPECT_EQ(h.http.path, "/healthcheck");
  EXPECT_EQ(h.http.host, "keystone.internal");
  ASSERT_EQ(h.http.headers.size(), 1u);
  ASSERT_EQ(h.http.expect_status.size(), 3u);
  EXPECT_TRUE(h.http.expect_status[0].contains(204));
  EXPECT_FALSE(h.http.expect_status[0].contains(300));
  EXPECT_TRUE(h.http.expect_status[1].contains(301));
  EXPECT_TRUE(h.http.expect_status[2].contains(404));
  EXPECT_EQ(h.http.expect_body, "ok");
  EXPECT_EQ(pool.lifecycle.slow_start, 30000ms);
  EXPECT_EQ(pool.lifecycle.eject_after, 5u);
  EXPECT_EQ(pool.lifecycle.eject_for, 2000ms);
  EXPECT_EQ(pool.lifecycle.eject_max, 20000ms);
}

TEST(ConfigHealthTest, DefaultsWithoutAHealthTable) {
  auto p = parse(withPool(""));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_EQ(p.config->pools[0].health.type, health::CheckType::None);
  EXPECT_EQ(p.config->pools[0].lifecycle.eject_after, 3u);
  EXPECT_EQ(p.config->pools[0].lifecycle.slow_start, 0ms);
  EXPECT_FALSE(p.config->admin.enabled);
  EXPECT_EQ(p.config->global.access_log_format, AccessLogFormat::Text);
}

TEST(ConfigHealthTest, TlsCheckInheritsThePoolTlsOrNeedsItsOwn) {
  auto inherit = parse(withPool("[pool.tls]\nca_file = \"/etc/ca.pem\"\nsni = \"api.internal\"\n"
                                "[pool.health]\ntype = \"tls\"\n"));
  ASSERT_TRUE(inherit.config) << joined(inherit.errors);
  EXPECT_TRUE(inherit.config->pools[0].health.tls.enabled);
  EXPECT_EQ(inherit.config->pools[0].health.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(inherit.config->pools[0].health.tls.sni, "api.internal");

  auto own = parse(withPool("[pool.health]\ntype = \"https\"\npath = \"/v3\"\n"
                            "[pool.health.tls]\nca_file = \"/etc/internal.pem\"\nalpn = [\"http/1.1\"]\n"));
  ASSERT_TRUE(own.config) << joined(own.errors);
  EXPECT_EQ(own.config->pools[0].health.tls.ca_file, "/etc/internal.pem");
  EXPECT_FALSE(own.config->pools[0].tls.enabled);  // the data path stays passthrough/plain

  auto neither = parse(withPool("[pool.health]\ntype = \"tls\"\n"));
  ASSERT_FALSE(neither.config);
  EXPECT_TRUE(contains(joined(neither.errors), "checks with TLS but the pool has no [pool.tls]")) << joined(neither.errors);
}

TEST(ConfigHealthTest, BadHealthKeysAreReportedWithTheExpectedForm) {
  auto p = parse(withPool(R"([pool.health]
type = "icmp"
path = "no-slash"
timeout = "5s"
)"));
  ASSERT_FALSE(p.config);
  std::string all = joined(p.errors);
  EXPECT_TRUE(contains(all, "unknown type \"icmp\" in [pool.health] of [[pool]] \"api\"; expected one of: none, tcp, tls, http, https"));
  EXPECT_TRUE(contains(all, "timeout in [pool.health] of [[pool]] \"api\" is longer than the interval"));
  // http-only keys on a non-HTTP check are errors, not silently ignored.
  EXPECT_TRUE(contains(all, "\"path\" in [pool.health] of [[pool]] \"api\" needs type \"http\" or \"https\""));
}

TEST(ConfigHealthTest, HttpValuesAreValidated) {
  auto p = parse(withPool("[pool.health]\ntype = \"http\"\npath = \"no-slash\"\nmethod = \"get\"\n"
                          "headers = [\"Bad Header\"]\nexpect_status = [\"2x\", \"700\", \"399-200\"]\n"));
  ASSERT_FALSE(p.config);
  std::string all = joined(p.errors);
  EXPECT_TRUE(contains(all, "path \"no-slash\"")) << all;
  EXPECT_TRUE(contains(all, "method \"get\"")) << all;
  EXPECT_TRUE(contains(all, "header \"Bad Header\"")) << all;
  EXPECT_TRUE(contains(all, "expect_status \"2x\"")) << all;
  EXPECT_TRUE(contains(all, "expect_status \"700\"")) << all;
  EXPECT_TRUE(contains(all, "expect_status \"399-200\"")) << all;
}

TEST(ConfigHealthTest, BackupBackendsAndAllBackupIsAnError) {
  auto p = parse(withPool("", "", "backup = true\n"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_FALSE(p.config->pools[0].backends[0].backup);
  EXPECT_TRUE(p.config->pools[0].backends[1].backup);
  std::string text = withPool("");
  text.replace(text.find("address = \"10.0.0.1:443\"\n"), 25, "address = \"10.0.0.1:443\"\nbackup = true\n");
  text += "backup = true\n";
  auto all_backup = parse(text);
  ASSERT_FALSE(all_backup.config);
  EXPECT_TRUE(contains(joined(all_backup.errors), "every backend in [[pool]] \"api\" is a backup"));
}

TEST(ConfigHealthTest, AdminRuntimeSocketAndJsonAccessLog) {
  auto p = parse(withPool("", R"([global]
runtime_socket = "/run/ringlb/admin.sock"
runtime_socket_mode = "0660"
access_log_format = "json"
[admin]
bind = "127.0.0.1:8404"
)"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_EQ(p.config->global.runtime_socket, "/run/ringlb/admin.sock");
  EXPECT_EQ(p.config->global.runtime_socket_mode, 0660u);
  EXPECT_EQ(p.config->global.access_log_format, AccessLogFormat::Json);
  EXPECT_TRUE(p.config->admin.enabled);
  EXPECT_EQ(p.config->admin.bind.text, "127.0.0.1:8404");

  auto bad = parse(withPool("", "[global]\nruntime_socket = \"admin.sock\"\nruntime_socket_mode = \"rw\"\n"
                                "[admin]\nbind = \"nowhere\"\n"));
  ASSERT_FALSE(bad.config);
  std::string all = joined(bad.errors);
  EXPECT_TRUE(contains(all, "runtime_socket \"admin.sock\" in [global] is not an absolute path")) << all;
  EXPECT_TRUE(contains(all, "runtime_socket_mode \"rw\" in [global] is not an octal mode")) << all;
  EXPECT_TRUE(contains(all, "invalid address \"nowhere\" for \"bind\" in [admin]")) << all;
}

TEST(ConfigHealthTest, EjectMaxShorterThanEjectForIsAnError) {
  auto p = parse(withPool("eject_for = \"10s\"\neject_max = \"5s\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "eject_max in [[pool]] \"api\" is shorter than eject_for"));
}

}  // namespace
}  // namespace ringlb::balancer
