// Interim parser for [crypto] async = true|false, so async crypto can be configured and
// tested before the full [crypto] parser (providers, property_query, engine, ktls) lands.
// At that merge: delete this file, its line in balancer/CMakeLists.txt, the declaration in
// config_validator.h and the call in config.cc; the full parser sets Config::crypto.async.
#include "balancer/config_validator.h"

namespace ringlb::balancer::config_detail {
namespace {
constexpr std::string_view kCryptoKeys[] = {"async"};
}  // namespace

void Validator::parseCryptoAsync(const toml::table& root, Config& out) {
  const toml::table* table = readTable(Section{root, "the top-level table"}, "crypto", "[crypto]");
  if (!table) return;
  Section s{*table, "[crypto]"};
  checkKeys(s, kCryptoKeys);
  readBool(s, "async", out.crypto.async);
  out.crypto_where = at(table->source());
}

}  // namespace ringlb::balancer::config_detail
