// Per-listener routing: from what the ClientHello says to a pool, or a refusal.
// Precedence (most specific first): exact SNI + ALPN, exact SNI, wildcard SNI + ALPN
// (longest suffix first), wildcard SNI, ALPN only, then default_pool. "*.example.org"
// matches exactly one extra label ("a.example.org", not "example.org" nor "a.b.example.org").
// SNI matching is case-insensitive. Pure: no sockets.
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
  // Private representation is the implementer's (helper B): keep it allocation-free on the
  // route() path.
  struct Rule {
    std::string suffix;  // for wildcards: ".example.org"
    std::string alpn;    // "" = any
    uint32_t pool = 0;
    int32_t route = -1;
  };
  std::unordered_map<std::string, std::vector<Rule>> exact_;  // lower-case name -> rules
  std::vector<Rule> wildcard_;   // longest suffix first
  std::vector<Rule> alpn_only_;
  int64_t default_pool_ = -1;
  MissAction on_no_sni_ = MissAction::Default;
  MissAction on_not_tls_ = MissAction::Close;
  MissAction on_no_match_ = MissAction::Alert;
};

}  // namespace ringlb::balancer
