// The configuration loader's [crypto] table: OpenSSL providers, the default property query,
// a legacy ENGINE and the classes handed to it, async handshakes and kernel TLS.
//
// Only the shape is checked here. Whether a provider or engine loads, and whether the
// property query parses, is decided by OpenSSL in tls/crypto_setup.cc: this library stays
// free of OpenSSL (the query grammar is internal to libcrypto; its only public parser is
// EVP_set_default_properties on a library context).
#include <algorithm>

#include "balancer/config_validator.h"

namespace ringlb::balancer::config_detail {
namespace {

constexpr std::string_view kCryptoKeys[] = {"providers", "property_query", "engine",
                                             "engine_algorithms", "async", "ktls"};
constexpr Named<tls::KtlsMode> kKtlsModes[] = {
    {"off", tls::KtlsMode::Off}, {"auto", tls::KtlsMode::Auto}, {"on", tls::KtlsMode::On}};
// ENGINE_set_default() classes (see tls/crypto_setup.cc for the ENGINE_METHOD_* flags).
constexpr std::string_view kEngineClasses[] = {"RSA", "EC", "DH", "PKEY", "CIPHERS", "DIGESTS", "ALL"};

bool hasSpaceOrControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

}  // namespace

void Validator::parseCrypto(const toml::table& root, Config& out) {
  const toml::table* table = readTable(Section{root, "the top-level table"}, "crypto", "[crypto]");
  if (!table) return;
  out.crypto_where = at(table->source());
  Section s{*table, "[crypto]"};
  checkKeys(s, kCryptoKeys);
  tls::CryptoConfig& crypto = out.crypto;

  readStringList(s, "providers", crypto.providers);
  for (size_t i = 0; i < crypto.providers.size(); ++i) {
    const std::string& name = crypto.providers[i];
    const toml::node& node = *table->get("providers")->as_array()->get(i);
    if (name.empty() || hasSpaceOrControl(name)) {
      fail(node.source(), "provider " + quote(name) + " in [crypto] is not a provider name or path",
           R"(a name like "default", "legacy", "qatprovider" or the absolute path of a provider module)");
    } else if (std::find(crypto.providers.begin(), crypto.providers.begin() + static_cast<long>(i), name) !=
               crypto.providers.begin() + static_cast<long>(i)) {
      fail(node.source(), "provider " + quote(name) + " is listed twice in [crypto]", "each provider once");
    }
  }

  if (const toml::node* node = readString(s, "property_query", crypto.property_query);
      node && std::any_of(crypto.property_query.begin(), crypto.property_query.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    fail(node->source(), "property_query in [crypto] contains a control character",
         R"(an OpenSSL property query like "provider=default" or "?provider=qatprovider")");
  }

  if (const toml::node* node = readString(s, "engine", crypto.engine);
      node && (crypto.engine.empty() || hasSpaceOrControl(crypto.engine))) {
    fail(node->source(), "engine " + quote(crypto.engine) + " in [crypto] is not an engine id",
         R"(an OpenSSL engine id like "afalg" or "qatengine" (engines-3/<id>.so), or no "engine" key)");
  }

  std::vector<std::string> classes;
  readStringList(s, "engine_algorithms", classes);
  if (const toml::node* node = table->get("engine_algorithms"); node && crypto.engine.empty()) {
    fail(node->source(), "engine_algorithms in [crypto] without an engine",
         R"(an "engine" key naming the engine these classes are handed to)");
  }
  std::string expected_class = "each one of: " + join(kEngineClasses);
  for (size_t i = 0; i < classes.size(); ++i) {
    const toml::node& node = *table->get("engine_algorithms")->as_array()->get(i);
    std::string upper = classes[i];
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; });
    if (std::find(std::begin(kEngineClasses), std::end(kEngineClasses), upper) == std::end(kEngineClasses)) {
      fail(node.source(), "unknown engine algorithm class " + quote(classes[i]) + " in [crypto]", expected_class);
    } else if (std::find(crypto.engine_algorithms.begin(), crypto.engine_algorithms.end(), upper) !=
               crypto.engine_algorithms.end()) {
      fail(node.source(), "engine algorithm class " + quote(upper) + " is listed twice in [crypto]",
           "each class once");
    } else {
      crypto.engine_algorithms.push_back(std::move(upper));
    }
  }
  if (const toml::node* node = table->get("engine_algorithms"); node && classes.empty() && node->as_array()) {
    fail(node->source(), "empty engine_algorithms in [crypto]",
         R"(at least one class, or no "engine_algorithms" key for "ALL")");
  }

  readBool(s, "async", crypto.async);
  readEnum(s, "ktls", crypto.ktls, kKtlsModes);
}

}  // namespace ringlb::balancer::config_detail
