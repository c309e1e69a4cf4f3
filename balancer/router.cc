#include "balancer/router.h"

#include <algorithm>
#include <cassert>

namespace ringlb::balancer {
namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lowerAscii(c);
  return out;
}

RouteDecision toPool(uint32_t pool, int32_t route, const char* reason) {
  return {RouteDecision::Kind::Pool, pool, route, reason};
}

RouteDecision refuse(RouteDecision::Kind kind, const char* reason) {
  return {kind, 0, -1, reason};
}

}  // namespace

// The first rule, in the client's order of preference (RFC 7301 s3.1: protocol_name_list
// is "in descending order of preference"), whose protocol the client offers; nullptr if none.
// Protocol names are "opaque, non-empty byte strings", compared byte for byte: no case
// folding. Following the client's order makes the result independent of config order.
const Router::Rule* Router::firstOffered(const tls::ClientHelloInfo& hello,
                                         const std::vector<Rule>& rules) {
  if (!hello.has_alpn || rules.empty()) return nullptr;
  const Rule* found = nullptr;
  hello.alpn.forEach([&](std::string_view offered) {
    for (const Rule& rule : rules) {
      if (rule.alpn == offered) {
        found = &rule;
        return false;
      }
    }
    return true;
  });
  return found;
}

const Router::Rule* Router::RuleSet::match(const tls::ClientHelloInfo& hello) const {
  if (const Rule* rule = firstOffered(hello, with_alpn)) return rule;
  return has_plain ? &plain : nullptr;
}

Router::Router(const ListenerConfig& listener,
               const std::unordered_map<std::string, uint32_t>& pool_index)
    : on_no_sni_(listener.on_no_sni), on_not_tls_(listener.on_not_tls), on_no_match_(listener.on_no_match) {
  for (size_t i = 0; i < listener.routes.size(); ++i) {
    const RouteConfig& config = listener.routes[i];
    auto pool = pool_index.find(config.pool);
    // loadConfig() rejects routes naming unknown pools; skip rather than route to garbage.
    assert(pool != pool_index.end() && "route names an unknown pool");
    if (pool == pool_index.end()) continue;
    Rule rule{config.alpn, pool->second, static_cast<int32_t>(i)};

    if (config.sni.empty()) {
      if (!config.alpn.empty()) {
        alpn_only_.push_back(std::move(rule));
      } else if (!has_catch_all_) {
        catch_all_ = std::move(rule);
        has_catch_all_ = true;
      }
      continue;
    }
    // "*.example.org" is keyed by ".example.org"; route() looks up the SNI minus its first
    // label, so only names with exactly one extra label can match.
    const bool wildcard = config.sni.starts_with("*.");
    RuleSet& set = wildcard ? wildcard_[lowerCopy(std::string_view(config.sni).substr(1))]
                            : exact_[lowerCopy(config.sni)];
    if (!rule.alpn.empty()) {
      set.with_alpn.push_back(std::move(rule));
    } else if (!set.has_plain) {  // a duplicate plain rule is shadowed by the first
      set.plain = std::move(rule);
      set.has_plain = true;
    }
  }
  if (!listener.default_pool.empty()) {
    auto pool = pool_index.find(listener.default_pool);
    assert(pool != pool_index.end() && "default_pool names an unknown pool");
    if (pool != pool_index.end()) default_pool_ = pool->second;
  }
}

std::string_view Router::lowerSni(std::string_view sni, char (&out)[256]) {
  const size_t n = std::min(sni.size(), sizeof(out));
  for (size_t i = 0; i < n; ++i) out[i] = lowerAscii(sni[i]);
  return {out, n};
}

// Rules that do not look at the SNI: ALPN-only routes, then the catch-all.
RouteDecision Router::matchAnySni(const tls::ClientHelloInfo& hello) const {
  if (const Rule* rule = firstOffered(hello, alpn_only_)) return toPool(rule->pool, rule->route, "alpn");
  if (has_catch_all_) return toPool(catch_all_.pool, catch_all_.route, "default");
  return refuse(RouteDecision::Kind::Close, "");  // reason "" = no match here
}

// `reason` for a refusal, `pool_reason` when the Default action picks default_pool.
RouteDecision Router::miss(MissAction action, const char* reason, const char* pool_reason) const {
  switch (action) {
    case MissAction::Default:
      if (default_pool_ >= 0) return toPool(static_cast<uint32_t>(default_pool_), -1, pool_reason);
      return refuse(RouteDecision::Kind::Alert, reason);
    case MissAction::Close:
      return refuse(RouteDecision::Kind::Close, reason);
    case MissAction::Alert:
      return refuse(RouteDecision::Kind::Alert, reason);
  }
  return refuse(RouteDecision::Kind::Close, reason);
}

RouteDecision Router::route(const tls::ClientHelloInfo& hello) const {
  if (!hello.has_sni || hello.sni.empty()) {
    if (on_no_sni_ != MissAction::Default) return miss(on_no_sni_, "no_sni", "default");
    RouteDecision any = matchAnySni(hello);
    return any.kind == RouteDecision::Kind::Pool ? any : miss(MissAction::Default, "no_sni", "default");
  }

  // A host name is at most 255 bytes (RFC 6066 s3, and the parser enforces it); anything
  // longer cannot be a configured name, so it only gets the SNI-independent rules.
  char buffer[256];
  if (hello.sni.size() <= 255) {
    const std::string_view name = lowerSni(hello.sni, buffer);
    if (auto it = exact_.find(name); it != exact_.end()) {
      if (const Rule* rule = it->second.match(hello)) return toPool(rule->pool, rule->route, "sni");
    }
    // One label only: the suffix starts at the first dot, after a non-empty first label.
    // So at most one wildcard suffix can match a name, and "longest suffix first" holds
    // trivially.
    const size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0) {
      if (auto it = wildcard_.find(name.substr(dot)); it != wildcard_.end()) {
        if (const Rule* rule = it->second.match(hello)) {
          return toPool(rule->pool, rule->route, "wildcard");
        }
      }
    }
  }
  RouteDecision any = matchAnySni(hello);
  return any.kind == RouteDecision::Kind::Pool ? any : miss(on_no_match_, "no_match", "default");
}

RouteDecision Router::routeNotTls() const {
  // A not-TLS connection keeps its reason even on the default pool, so the access log says
  // why it went there.
  return miss(on_not_tls_, "not_tls", "not_tls");
}

}  // namespace ringlb::balancer
