// Per-listener routing: from what the ClientHello says to a pool, or a refusal.
// Precedence (most specific first): exact SNI + ALPN, exact SNI, wildcard SNI + ALPN
// (longest suffix first), wildcard SNI, ALPN only, then default_pool. "*.example.org"
// matches exactly one extra label ("a.example.org", not "example.org" nor "a.b.example.org").
// SNI matching is case-insensitive; ALPN matching is exact (RFC 7301 s3.1: protocol names
// are opaque bytes) and a route's alpn must be among the protocols the client offers. Among
// several ALPN routes at the same level, the client's preference order decides (the first
// offered protocol that has a route), so config order never matters. A route with neither
// sni nor alpn (config validation rejects it today) is a catch-all, tried just before
// default_pool. Pure: no sockets.
//
// Misses (RouteDecision::reason in quotes):
//  - no SNI: on_no_sni. Close/Alert refuse ("no_sni"). Default routes the hello by the rules
//    that do not look at SNI (ALPN-only routes, the catch-all), then default_pool, and
//    refuses with an alert ("no_sni") if there is none.
//  - SNI that no route matches: on_no_match. Default = default_pool ("default") if set,
//    else an alert; Close/Alert refuse ("no_match"). So default_pool catches unmatched SNI
//    only when on_no_match = "default".
//  - not TLS: on_not_tls, likewise, with reason "not_tls" whatever the outcome.
// Matches: "sni" (exact, with or without ALPN), "wildcard", "alpn" (ALPN-only route),
// "default" (the catch-all route or default_pool).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "balancer/config.h"
#include "tls/client_hello.h"

namespace ringlb::balancer {

struct RouteDecision {
  enum class Kind : uint8_t { Pool, Close, Alert } kind = Kind::Close;
  uint32_t pool = 0;       // index into the pools vector when kind == Pool
  int32_t route = -1;      // index of the matching route in ListenerConfig::routes, -1 = default
  const char* reason = ""; // "sni", "wildcard", "alpn", "default", "no_sni", "no_match", "not_tls"
};

class Router {
 public:
  // `pool_index` maps pool names (validated by loadConfig) to indices.
  Router(const ListenerConfig& listener, const std::unordered_map<std::string, uint32_t>& pool_index);

  // For a Complete ClientHello.
  RouteDecision route(const tls::ClientHelloInfo& hello) const;
  // For a connection whose first bytes are not TLS.
  RouteDecision routeNotTls() const;

  // Lower-cases `sni` into `out` (ASCII only; the parser rejected anything else).
  static std::string_view lowerSni(std::string_view sni, char (&out)[256]);

 private:
  // One name's (exact) or one suffix's (wildcard) rules: routes with an ALPN, then the
  // first route without one.
  struct Rule {
    std::string alpn;  // "" = any
    uint32_t pool = 0;
    int32_t route = -1;
  };
  struct RuleSet {
    std::vector<Rule> with_alpn;
    bool has_plain = false;
    Rule plain;
    const Rule* match(const tls::ClientHelloInfo& hello) const;
  };
  // Transparent hash + equality: find() with a std::string_view, no temporary std::string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using RuleMap = std::unordered_map<std::string, RuleSet, NameHash, std::equal_to<>>;

  static const Rule* firstOffered(const tls::ClientHelloInfo& hello, const std::vector<Rule>& rules);
  RouteDecision matchAnySni(const tls::ClientHelloInfo& hello) const;  // ALPN-only, catch-all
  RouteDecision miss(MissAction action, const char* reason, const char* pool_reason) const;

  RuleMap exact_;             // lower-case name -> rules
  RuleMap wildcard_;          // lower-case suffix (".example.org" for "*.example.org") -> rules
  std::vector<Rule> alpn_only_;
  bool has_catch_all_ = false;  // a route with sni = "" and alpn = ""
  Rule catch_all_;
  int64_t default_pool_ = -1;
  MissAction on_no_sni_ = MissAction::Default;
  MissAction on_not_tls_ = MissAction::Close;
  MissAction on_no_match_ = MissAction::Alert;
};

}  // namespace ringlb::balancer
