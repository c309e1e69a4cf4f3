#include "balancer/router.h"

#include <gtest/gtest.h>

#include <atomic>
#include <initializer_list>
#include <string>
#include <vector>

namespace ringlb::test {
extern std::atomic<long> g_allocations;  // counting operator new, see selector_test.cc
}  // namespace ringlb::test

namespace ringlb::balancer {
namespace {

using Kind = RouteDecision::Kind;

const std::unordered_map<std::string, uint32_t> kPools{
    {"api", 0}, {"web", 1}, {"grpc", 2}, {"wild", 3}, {"fallback", 4}, {"h2only", 5}, {"any", 6}};

// A hand-built ClientHelloInfo; owns the ALPN wire bytes its ListView points into.
struct Hello {
  std::vector<uint8_t> alpn_wire;
  tls::ClientHelloInfo info;

  Hello(const char* sni, std::initializer_list<std::string> alpn = {}) {
    if (sni != nullptr) {
      info.has_sni = true;
      info.sni = sni;
    }
    for (const std::string& p : alpn) {  // RFC 7301 s3.1: 1-byte length, then the name
      alpn_wire.push_back(static_cast<uint8_t>(p.size()));
      alpn_wire.insert(alpn_wire.end(), p.begin(), p.end());
    }
    if (alpn.size() > 0) {
      info.has_alpn = true;
      info.alpn = tls::ListView(alpn_wire, 1);
    }
  }
};

RouteConfig routeTo(std::string sni, std::string alpn, std::string pool) {
  RouteConfig r;
  r.sni = std::move(sni);
  r.alpn = std::move(alpn);
  r.pool = std::move(pool);
  return r;
}

ListenerConfig listener(std::vector<RouteConfig> routes, std::string default_pool = "") {
  ListenerConfig l;
  l.name = "test";
  l.routes = std::move(routes);
  l.default_pool = std::move(default_pool);
  return l;
}

// The listener most tests use: every precedence level present.
ListenerConfig full() {
  return listener({
      routeTo("api.example.org", "", "api"),           // 0
      routeTo("api.example.org", "h2", "grpc"),        // 1
      routeTo("*.example.org", "", "wild"),            // 2
      routeTo("*.example.org", "h2", "h2only"),        // 3
      routeTo("", "acme-tls/1", "web"),                // 4
      routeTo("*.svc.example.org", "", "web"),         // 5
  });
}

void expectPool(const RouteDecision& d, uint32_t pool, int32_t route, const char* reason) {
  EXPECT_EQ(d.kind, Kind::Pool);
  EXPECT_EQ(d.pool, pool);
  EXPECT_EQ(d.route, route);
  EXPECT_STREQ(d.reason, reason);
}

void expectRefused(const RouteDecision& d, Kind kind, const char* reason) {
  EXPECT_EQ(d.kind, kind);
  EXPECT_STREQ(d.reason, reason);
}

TEST(RouterTest, ExactSniBeatsWildcard) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("api.example.org").info), 0, 0, "sni");
  expectPool(r.route(Hello("www.example.org").info), 3, 2, "wildcard");
}

TEST(RouterTest, ExactSniWithAlpnBeatsExactSni) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("api.example.org", {"http/1.1", "h2"}).info), 2, 1, "sni");
  expectPool(r.route(Hello("api.example.org", {"http/1.1"}).info), 0, 0, "sni");
}

TEST(RouterTest, ExactSniBeatsWildcardWithAlpn) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("api.example.org", {"h3", "http/1.1"}).info), 0, 0, "sni");
}

TEST(RouterTest, WildcardWithAlpnBeatsWildcard) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("www.example.org", {"h2"}).info), 5, 3, "wildcard");
  expectPool(r.route(Hello("www.example.org", {"http/1.1"}).info), 3, 2, "wildcard");
}

TEST(RouterTest, WildcardMatchesExactlyOneLabel) {
  Router r(listener({routeTo("*.example.org", "", "wild")}), kPools);
  expectPool(r.route(Hello("a.example.org").info), 3, 0, "wildcard");
  expectRefused(r.route(Hello("example.org").info), Kind::Alert, "no_match");
  expectRefused(r.route(Hello("a.b.example.org").info), Kind::Alert, "no_match");
  expectRefused(r.route(Hello(".example.org").info), Kind::Alert, "no_match");
  expectRefused(r.route(Hello("aexample.org").info), Kind::Alert, "no_match");
}

TEST(RouterTest, DeeperWildcardTakesItsOwnLabel) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("x.svc.example.org").info), 1, 5, "wildcard");
  expectPool(r.route(Hello("svc.example.org").info), 3, 2, "wildcard");
}

TEST(RouterTest, SniMatchingIsCaseInsensitive) {
  Router r(listener({routeTo("API.Example.org", "", "api"), routeTo("*.EXAMPLE.net", "", "wild")}),
           kPools);
  expectPool(r.route(Hello("api.EXAMPLE.ORG").info), 0, 0, "sni");
  expectPool(r.route(Hello("Www.example.NET").info), 3, 1, "wildcard");
}

// RFC 7301: protocol names are opaque bytes.
TEST(RouterTest, AlpnMatchingIsExactAndCaseSensitive) {
  Router r(listener({routeTo("", "h2", "h2only")}), kPools);
  expectPool(r.route(Hello("x.test", {"h2"}).info), 5, 0, "alpn");
  expectRefused(r.route(Hello("x.test", {"H2"}).info), Kind::Alert, "no_match");
  expectRefused(r.route(Hello("x.test", {"h2c"}).info), Kind::Alert, "no_match");
  expectRefused(r.route(Hello("x.test").info), Kind::Alert, "no_match");
}

TEST(RouterTest, AlpnOnlyRouteComesAfterSniRoutes) {
  Router r(full(), kPools);
  expectPool(r.route(Hello("other.test", {"acme-tls/1"}).info), 1, 4, "alpn");
  expectPool(r.route(Hello("www.example.org", {"acme-tls/1"}).info), 3, 2, "wildcard");
}

// RFC 7301 s3.1: the client lists protocols in descending preference; its first protocol
// that has a route wins, whatever the config order.
TEST(RouterTest, AmongAlpnRoutesTheClientsPreferenceWins) {
  for (bool reversed : {false, true}) {
    std::vector<RouteConfig> routes{routeTo("", "b", "web"), routeTo("", "a", "api")};
    if (reversed) std::swap(routes[0], routes[1]);
    Router r(listener(routes), kPools);
    const int32_t a_index = reversed ? 0 : 1;
    const int32_t b_index = reversed ? 1 : 0;
    expectPool(r.route(Hello("x.test", {"a", "b"}).info), 0, a_index, "alpn");
    expectPool(r.route(Hello("x.test", {"c", "b", "a"}).info), 1, b_index, "alpn");
  }
  Router exact(listener({routeTo("x.test", "h2", "grpc"), routeTo("x.test", "http/1.1", "web")}),
               kPools);
  expectPool(exact.route(Hello("x.test", {"http/1.1", "h2"}).info), 1, 1, "sni");
  expectPool(exact.route(Hello("x.test", {"h2", "http/1.1"}).info), 2, 0, "sni");
}

TEST(RouterTest, CatchAllRouteComesJustBeforeDefault) {
  auto l = listener({routeTo("", "", "any"), routeTo("", "h2", "h2only")}, "fallback");
  Router r(l, kPools);
  expectPool(r.route(Hello("x.test", {"h2"}).info), 5, 1, "alpn");
  expectPool(r.route(Hello("x.test").info), 6, 0, "default");
}

TEST(RouterTest, UnmatchedSniFollowsOnNoMatch) {
  auto l = full();
  l.default_pool = "fallback";
  l.on_no_match = MissAction::Default;
  expectPool(Router(l, kPools).route(Hello("nope.test").info), 4, -1, "default");
  l.on_no_match = MissAction::Close;
  expectRefused(Router(l, kPools).route(Hello("nope.test").info), Kind::Close, "no_match");
  l.on_no_match = MissAction::Alert;
  expectRefused(Router(l, kPools).route(Hello("nope.test").info), Kind::Alert, "no_match");
  // Default without a default pool behaves as Alert.
  l.default_pool = "";
  l.on_no_match = MissAction::Default;
  expectRefused(Router(l, kPools).route(Hello("nope.test").info), Kind::Alert, "no_match");
}

TEST(RouterTest, MissingSniFollowsOnNoSni) {
  auto l = listener({routeTo("api.example.org", "", "api")}, "fallback");
  l.on_no_sni = MissAction::Default;
  expectPool(Router(l, kPools).route(Hello(nullptr).info), 4, -1, "default");
  l.on_no_sni = MissAction::Close;
  expectRefused(Router(l, kPools).route(Hello(nullptr).info), Kind::Close, "no_sni");
  l.on_no_sni = MissAction::Alert;
  expectRefused(Router(l, kPools).route(Hello(nullptr).info), Kind::Alert, "no_sni");
  l.default_pool = "";
  l.on_no_sni = MissAction::Default;
  expectRefused(Router(l, kPools).route(Hello(nullptr).info), Kind::Alert, "no_sni");
}

// With on_no_sni = default, rules that do not look at SNI still apply to a hello without it.
TEST(RouterTest, MissingSniStillMatchesSniIndependentRoutes) {
  auto l = listener({routeTo("", "h2", "h2only"), routeTo("*.example.org", "", "wild")});
  Router r(l, kPools);
  expectPool(r.route(Hello(nullptr, {"h2"}).info), 5, 0, "alpn");
  expectRefused(r.route(Hello(nullptr, {"http/1.1"}).info), Kind::Alert, "no_sni");
  l.on_no_sni = MissAction::Close;
  expectRefused(Router(l, kPools).route(Hello(nullptr, {"h2"}).info), Kind::Close, "no_sni");
}

TEST(RouterTest, NotTlsFollowsOnNotTls) {
  auto l = full();
  l.default_pool = "fallback";
  expectRefused(Router(l, kPools).routeNotTls(), Kind::Close, "not_tls");  // the default action
  l.on_not_tls = MissAction::Default;
  expectPool(Router(l, kPools).routeNotTls(), 4, -1, "not_tls");
  l.on_not_tls = MissAction::Alert;
  expectRefused(Router(l, kPools).routeNotTls(), Kind::Alert, "not_tls");
}

TEST(RouterTest, LowerSniLowersAsciiIntoTheBuffer) {
  char buf[256];
  EXPECT_EQ(Router::lowerSni("WwW.Example-1.ORG", buf), "www.example-1.org");
  const std::string long_name(300, 'A');
  EXPECT_EQ(Router::lowerSni(long_name, buf).size(), 256u);
}

TEST(RouterTest, RouteDoesNotAllocate) {
  auto l = full();
  l.default_pool = "fallback";
  Router r(l, kPools);
  Hello hellos[] = {Hello("API.example.org", {"h2"}), Hello("www.example.org", {"x", "h2"}),
                    Hello("nope.test", {"acme-tls/1"}), Hello(nullptr), Hello("a.b.c.d.e")};
  const long before = test::g_allocations.load();
  uint32_t sink = 0;
  for (int i = 0; i < 100; ++i) {
    for (const Hello& h : hellos) sink += r.route(h.info).pool;
  }
  EXPECT_EQ(test::g_allocations.load(), before);
  EXPECT_NE(sink, 0u);
}

}  // namespace
}  // namespace ringlb::balancer
