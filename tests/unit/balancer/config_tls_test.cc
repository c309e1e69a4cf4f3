// [listener.tls], [pool.tls], route modes and PROXY-header keys of the configuration.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "balancer/config.h"
#include "config_test_util.h"

namespace ringlb::balancer {
namespace {

using namespace std::chrono_literals;

using testing::joined;
using testing::Parsed;

// Under /etc/ringlb, so relative certificate paths have a directory to resolve against.
Parsed parse(std::string_view text) { return testing::parse(text, "/etc/ringlb/t.toml"); }

// A terminating listener with one certificate, routing to pool "api"; tests append keys to
// [[pool.backend]] (the last table) or add tables.
std::string terminating(std::string_view listener_tls = "", std::string_view pool_tls = "",
                        std::string_view listener_extra = "") {
  std::string text = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "api"
)";
  text += listener_extra;
  text += "\n[listener.tls]\ncertificates = [\"certs/www.pem\"]\n";
  text += listener_tls;
  text += "\n[[pool]]\nname = \"api\"\n";
  if (!pool_tls.empty()) {
    text += "[pool.tls]\n";
    text += pool_tls;
  }
  text += "\n[[pool.backend]]\nname = \"api-1\"\naddress = \"10.0.0.1:443\"\n";
  return text;
}

std::string onlyError(std::string_view text) {
  Parsed parsed = parse(text);
  EXPECT_FALSE(parsed.config) << text;
  EXPECT_EQ(parsed.errors.size(), 1u) << joined(parsed.errors);
  return parsed.errors.empty() ? "" : parsed.errors.front();
}

TEST(ConfigTlsTest, TerminatingListenerReadsEveryServerKey) {
  Parsed parsed = parse(terminating(R"(certificate_dir = "/etc/ringlb/certs.d"
default_certificate = "certs/www.pem"
strict_sni = true
policy = "modern"
min_version = "1.3"
max_version = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
ciphersuites = "TLS_AES_128_GCM_SHA256"
groups = "X25519"
signature_algorithms = "ECDSA+SHA256"
alpn = ["h2", "http/1.1"]
session_tickets = true
ticket_key_file = "tickets.key"
session_cache_size = 0
session_lifetime = "2m"
client_verify = "optional"
client_ca_file = "/pki/clients.pem"
client_crl_file = "/pki/clients.crl"
client_verify_depth = 2
)"));
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  const ListenerConfig& listener = parsed.config->listeners[0];
  EXPECT_EQ(listener.mode, ListenerMode::Terminate);
  ASSERT_TRUE(listener.has_tls);
  const tls::ServerTlsConfig& t = listener.tls;
  // Relative paths are resolved against the configuration file's directory.
  EXPECT_EQ(t.certificates, std::vector<std::string>{"/etc/ringlb/certs/www.pem"});
  EXPECT_EQ(t.certificate_dir, "/etc/ringlb/certs.d");
  EXPECT_EQ(t.default_certificate, "/etc/ringlb/certs/www.pem");
  EXPECT_TRUE(t.strict_sni);
  EXPECT_EQ(t.policy.preset, tls::TlsPreset::Modern);
  EXPECT_TRUE(t.policy.min_set && t.policy.max_set);
  EXPECT_EQ(t.policy.min_version, tls::TlsVersion::Tls13);
  EXPECT_EQ(t.policy.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(t.policy.ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(t.policy.groups, "X25519");
  EXPECT_EQ(t.policy.signature_algorithms, "ECDSA+SHA256");
  EXPECT_EQ(t.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(t.ticket_key_file, "/etc/ringlb/tickets.key");
  EXPECT_EQ(t.session_cache_size, 0u);
  EXPECT_EQ(t.session_lifetime, 120s);
  EXPECT_EQ(t.client_verify, tls::ClientVerify::Optional);
  EXPECT_EQ(t.client_ca_file, "/pki/clients.pem");
  EXPECT_EQ(t.client_crl_file, "/pki/clients.crl");
  EXPECT_EQ(t.client_verify_depth, 2u);
  EXPECT_EQ(listener.tls_where, "/etc/ringlb/t.toml:7:1");
}

TEST(ConfigTlsTest, PoolTlsReadsEveryClientKey) {
  Parsed parsed = parse(terminating("", R"(ca_file = "internal-ca.pem"
verify_name = "api.internal"
forward_sni = true
client_certificate = "lb.pem"
client_key = "lb.key"
policy = "modern"
alpn = ["http/1.1"]
forward_alpn = true
session_reuse = false
)") + "tls_name = \"api-1.internal\"\n");
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  const PoolConfig& pool = parsed.config->pools[0];
  const tls::ClientTlsConfig& t = pool.tls;
  EXPECT_TRUE(t.enabled);
  EXPECT_TRUE(t.verify);
  EXPECT_EQ(t.ca_file, "/etc/ringlb/internal-ca.pem");
  EXPECT_EQ(t.verify_name, "api.internal");
  EXPECT_TRUE(t.forward_sni);
  EXPECT_EQ(t.client_certificate, "/etc/ringlb/lb.pem");
  EXPECT_EQ(t.client_key, "/etc/ringlb/lb.key");
  EXPECT_EQ(t.policy.preset, tls::TlsPreset::Modern);
  EXPECT_EQ(t.alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_TRUE(t.forward_alpn);
  EXPECT_FALSE(t.session_reuse);
  EXPECT_EQ(pool.backends[0].tls_name, "api-1.internal");
}

TEST(ConfigTlsTest, DefaultsAreIntermediateWithTicketsAndNoClientVerify) {
  Parsed parsed = parse(terminating());
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  const tls::ServerTlsConfig& t = parsed.config->listeners[0].tls;
  EXPECT_EQ(t.policy.preset, tls::TlsPreset::Intermediate);
  EXPECT_FALSE(t.policy.min_set);
  EXPECT_TRUE(t.session_tickets);
  EXPECT_EQ(t.session_cache_size, 20000u);
  EXPECT_EQ(t.client_verify, tls::ClientVerify::None);
  EXPECT_FALSE(parsed.config->pools[0].tls.enabled);
}

TEST(ConfigTlsTest, RoutesInheritTheListenerModeUnlessTheySetOne) {
  Parsed parsed = parse(terminating("", "", R"(
[[listener.route]]
sni = "a.example.org"
pool = "api"

[[listener.route]]
sni = "b.example.org"
pool = "api"
mode = "passthrough"
)"));
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  const auto& routes = parsed.config->listeners[0].routes;
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].mode, ListenerMode::Terminate);
  EXPECT_EQ(routes[1].mode, ListenerMode::Passthrough);
}

TEST(ConfigTlsTest, OldProtocolVersionsAreRejectedWithTheReason) {
  EXPECT_EQ(onlyError(terminating("min_version = \"1.1\"\n")),
            "/etc/ringlb/t.toml:9:15: min_version \"1.1\" in [listener.tls] of [[listener]] \"vip\" is "
            "not supported (deprecated by RFC 8996); expected \"1.2\" or \"1.3\"");
}

TEST(ConfigTlsTest, MinAboveMaxIsRejected) {
  std::string error = onlyError(terminating("min_version = \"1.3\"\nmax_version = \"1.2\"\n"));
  EXPECT_NE(error.find("min_version is above max_version"), std::string::npos) << error;
}

TEST(ConfigTlsTest, TerminateWithoutCertificatesIsRejected) {
  std::string text = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "api"

[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)";
  EXPECT_EQ(onlyError(text),
            "/etc/ringlb/t.toml:4:8: [[listener]] \"vip\" has mode = \"terminate\" but no "
            "[listener.tls] table; expected a [listener.tls] table with certificates");
}

TEST(ConfigTlsTest, TerminatingRouteOnAPassthroughListenerNeedsCertificates) {
  std::string text = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]

[[listener.route]]
sni = "a.example.org"
pool = "api"
mode = "terminate"

[[pool]]
name = "api"
backend = [{ name = "a", address = "10.0.0.1:443" }]
)";
  std::string error = onlyError(text);
  EXPECT_NE(error.find("route #1 of [[listener]] \"vip\" terminates TLS but the listener has no "
                       "[listener.tls] table"),
            std::string::npos)
      << error;
}

TEST(ConfigTlsTest, TlsTableWithNothingTerminatingIsRejected) {
  std::string text = terminating();
  text.replace(text.find("mode = \"terminate\""), 18, "mode = \"passthrough\"");
  std::string error = onlyError(text);
  EXPECT_NE(error.find("has no effect: no route terminates TLS"), std::string::npos) << error;
}

TEST(ConfigTlsTest, EmptyCertificateListIsRejected) {
  std::string text = terminating();
  std::string_view listed = "certificates = [\"certs/www.pem\"]";
  text.replace(text.find(listed), listed.size(), "certificates = []");
  std::string error = onlyError(text);
  EXPECT_NE(error.find("has no certificates"), std::string::npos) << error;
}

TEST(ConfigTlsTest, ClientVerifyNeedsACa) {
  std::string error = onlyError(terminating("client_verify = \"required\"\n"));
  EXPECT_NE(error.find("client_verify in [listener.tls] of [[listener]] \"vip\" needs client_ca_file"),
            std::string::npos)
      << error;
}

TEST(ConfigTlsTest, VerifyingPoolNeedsACa) {
  std::string error = onlyError(terminating("", "verify_name = \"x\"\n"));
  EXPECT_NE(error.find("verifies backends but names no CA"), std::string::npos) << error;
  Parsed lab = parse(terminating("", "verify = false\n"));
  EXPECT_TRUE(lab.config) << joined(lab.errors);
}

TEST(ConfigTlsTest, FixedAndForwardedSniAreExclusive) {
  std::string error = onlyError(terminating("", "ca_file = \"ca.pem\"\nsni = \"x\"\nforward_sni = true\n"));
  EXPECT_NE(error.find("both sni and forward_sni"), std::string::npos) << error;
}

TEST(ConfigTlsTest, TlsNameWithoutPoolTlsIsRejected) {
  std::string error = onlyError(terminating() + "tls_name = \"x\"\n");
  EXPECT_NE(error.find("tls_name in [[pool.backend]] \"api-1\" of pool \"api\" has no effect"),
            std::string::npos)
      << error;
}

TEST(ConfigTlsTest, BadAlpnIdIsRejected) {
  std::string error = onlyError(terminating("alpn = [\"h2\", \"\"]\n"));
  EXPECT_NE(error.find("ALPN protocol \"\""), std::string::npos) << error;
}

TEST(ConfigTlsTest, UnknownTlsKeyListsTheAccepted) {
  std::string error = onlyError(terminating("sesion_tickets = false\n"));
  EXPECT_NE(error.find("unknown key \"sesion_tickets\" in [listener.tls]"), std::string::npos) << error;
}

TEST(ConfigTlsTest, AcceptProxyAndTrustedCidrsAreRead) {
  Parsed parsed = parse(terminating("", "", "accept_proxy = \"any\"\nproxy_trusted = [\"10.0.0.0/8\"]\n"));
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  EXPECT_EQ(parsed.config->listeners[0].accept_proxy, AcceptProxy::Any);
  EXPECT_EQ(parsed.config->listeners[0].proxy_trusted, std::vector<std::string>{"10.0.0.0/8"});
  std::string error = onlyError(terminating("", "", "proxy_trusted = [\"10.0.0.0/8\"]\n"));
  EXPECT_NE(error.find("proxy_trusted in [[listener]] \"vip\" has no effect"), std::string::npos) << error;
}

TEST(ConfigTlsTest, UserAndGroupAreRead) {
  Parsed parsed = parse("[global]\nuser = \"ringlb\"\ngroup = \"ssl-cert\"\n" + terminating());
  ASSERT_TRUE(parsed.config) << joined(parsed.errors);
  EXPECT_EQ(parsed.config->global.user, "ringlb");
  EXPECT_EQ(parsed.config->global.group, "ssl-cert");
}


// conf/public-vip.toml is documentation: it must always validate (its files are read when
// the runtime is built; the integration tests do that with the test PKI).
TEST(ConfigTlsTest, ExamplePublicVipConfigValidates) {
  std::vector<std::string> errors;
  auto config = loadConfig(RINGLB_SOURCE_DIR "/conf/public-vip.toml", errors);
  ASSERT_TRUE(config.has_value()) << joined(errors);
  ASSERT_EQ(config->listeners.size(), 2u);
  const ListenerConfig& vip = config->listeners[0];
  EXPECT_EQ(vip.mode, ListenerMode::Terminate);
  EXPECT_TRUE(vip.has_tls);
  bool passthrough_route = false;
  for (const RouteConfig& route : vip.routes) passthrough_route |= route.mode == ListenerMode::Passthrough;
  EXPECT_TRUE(passthrough_route) << "the example shows a passthrough route on a terminating listener";
  EXPECT_EQ(config->listeners[1].accept_proxy, AcceptProxy::V2);
  EXPECT_EQ(config->listeners[1].tls.client_verify, tls::ClientVerify::Required);
  const PoolConfig* horizon = config->findPool("horizon");
  ASSERT_NE(horizon, nullptr);
  EXPECT_TRUE(horizon->tls.enabled);
}

}  // namespace
}  // namespace ringlb::balancer
