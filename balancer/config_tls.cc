// The TLS half of the configuration: [listener.tls] (termination), [pool.tls] (re-encryption
// to backends), the PROXY-header keys of a listener and the per-route mode. Files are only
// named here; reading certificates and keys happens when the runtime is built (before
// privileges are dropped), so `parseConfig` stays pure and testable.
#include <algorithm>
#include <string>

#include "balancer/config_validator.h"
#include "core/cidr.h"

namespace ringlb::balancer::config_detail {
namespace {

constexpr Named<tls::TlsPreset> kPresets[] = {{"modern", tls::TlsPreset::Modern},
                                              {"intermediate", tls::TlsPreset::Intermediate}};
constexpr Named<tls::ClientVerify> kClientVerify[] = {{"none", tls::ClientVerify::None},
                                                      {"optional", tls::ClientVerify::Optional},
                                                      {"required", tls::ClientVerify::Required}};
constexpr Named<AcceptProxy> kAcceptProxy[] = {{"none", AcceptProxy::None},
                                               {"v1", AcceptProxy::V1},
                                               {"v2", AcceptProxy::V2},
                                               {"any", AcceptProxy::Any}};

constexpr std::string_view kPolicyKeys[] = {"policy", "min_version", "max_version", "ciphers",
                                            "ciphersuites", "groups", "signature_algorithms"};
constexpr std::string_view kServerTlsKeys[] = {
    "certificates", "certificate_dir", "default_certificate", "strict_sni", "alpn",
    "session_tickets", "ticket_key_file", "session_cache_size", "session_lifetime",
    "client_verify", "client_ca_file", "client_crl_file", "client_verify_depth"};
constexpr std::string_view kClientTlsKeys[] = {
    "ca_file", "ca_dir", "verify", "verify_name", "sni", "forward_sni", "client_certificate",
    "client_key", "alpn", "forward_alpn", "session_reuse"};

std::vector<std::string_view> concat(Keys a, Keys b) {
  std::vector<std::string_view> out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

std::string Validator::absolutePath(std::string_view path) const {
  if (path.empty() || path.front() == '/') return std::string(path);
  size_t slash = path_.rfind('/');
  if (slash == std::string::npos) return std::string(path);
  return path_.substr(0, slash + 1) + std::string(path);
}

const toml::table* Validator::readTable(const Section& parent, std::string_view key,
                                        std::string_view header) {
  const toml::node* node = parent.table.get(key);
  if (!node) return nullptr;
  const auto* table = node->as_table();
  if (!table) typeError(*node, key, parent, "a table (" + std::string(header) + ")");
  return table;
}

// Relative paths are relative to the configuration file's directory, so a config and its
// certificates can move together.
void Validator::readPath(const Section& s, std::string_view key, std::string& out) {
  if (const toml::node* node = readString(s, key, out)) {
    if (out.empty()) {
      fail(node->source(), "empty path for \"" + std::string(key) + "\" in " + s.label,
           "a file path, or no \"" + std::string(key) + "\" key");
    }
    out = absolutePath(out);
  }
}

void Validator::readStringList(const Section& s, std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = s.table.get(key);
  if (!node) return;
  const auto* array = node->as_array();
  if (!array) return typeError(*node, key, s, "an array of strings");
  for (const toml::node& element : *array) {
    if (const auto* text = element.as_string()) {
      out.push_back(text->get());
    } else {
      typeError(element, key, s, "an array of strings");
    }
  }
}

// RFC 7301 section 3.1: protocol IDs are 1..255 bytes, the whole list at most 65535.
void Validator::readAlpnList(const Section& s, std::string_view key, std::vector<std::string>& out) {
  readStringList(s, key, out);
  const toml::node* node = s.table.get(key);
  for (const std::string& id : out) {
    if (id.empty() || id.size() > 255) {
      fail(node->source(), "ALPN protocol " + quote(id) + " in " + s.label + " has " +
                               std::to_string(id.size()) + " bytes",
           R"(protocol IDs of 1..255 bytes like "h2" or "http/1.1" (RFC 7301))");
    }
  }
}

void Validator::readVersion(const Section& s, std::string_view key, tls::TlsVersion& out, bool& set) {
  std::string text;
  const toml::node* node = readString(s, key, text);
  if (!node) return;
  if (text == "1.2") {
    out = tls::TlsVersion::Tls12;
  } else if (text == "1.3") {
    out = tls::TlsVersion::Tls13;
  } else if (text == "1.0" || text == "1.1" || text == "ssl3" || text == "SSLv3") {
    return fail(node->source(),
                std::string(key) + " " + quote(text) + " in " + s.label +
                    " is not supported (deprecated by RFC 8996)",
                R"("1.2" or "1.3")");
  } else {
    return fail(node->source(), "unknown " + std::string(key) + " " + quote(text) + " in " + s.label,
                R"("1.2" or "1.3")");
  }
  set = true;
}

// Cipher, group and signature-algorithm names are checked by OpenSSL when the contexts are
// built (tls/policy.h), with the table's location in the message.
void Validator::parsePolicy(const Section& s, tls::TlsPolicy& out) {
  readEnum(s, "policy", out.preset, kPresets);
  readVersion(s, "min_version", out.min_version, out.min_set);
  readVersion(s, "max_version", out.max_version, out.max_set);
  if (out.min_set && out.max_set && out.min_version > out.max_version) {
    fail(s.table.get("min_version")->source(), "min_version is above max_version in " + s.label,
         "min_version <= max_version");
  }
  readString(s, "ciphers", out.ciphers);
  readString(s, "ciphersuites", out.ciphersuites);
  readString(s, "groups", out.groups);
  readString(s, "signature_algorithms", out.signature_algorithms);
}

void Validator::parseListenerTls(const Section& listener, ListenerConfig& out) {
  const toml::table* table = readTable(listener, "tls", "[listener.tls]");
  if (!table) return;
  out.has_tls = true;
  out.tls_where = at(table->source());
  Section s{*table, "[listener.tls] of " + listener.label};
  checkKeys(s, concat(kServerTlsKeys, kPolicyKeys));
  tls::ServerTlsConfig& tls = out.tls;
  readStringList(s, "certificates", tls.certificates);
  for (std::string& file : tls.certificates) file = absolutePath(file);
  readPath(s, "certificate_dir", tls.certificate_dir);
  if (tls.certificates.empty() && tls.certificate_dir.empty()) {
    fail(table->source(), s.label + " has no certificates",
         "certificates = [\"file.pem\", ...] and/or certificate_dir = \"dir\"");
  }
  readPath(s, "default_certificate", tls.default_certificate);
  readBool(s, "strict_sni", tls.strict_sni);
  parsePolicy(s, tls.policy);
  readAlpnList(s, "alpn", tls.alpn);
  readBool(s, "session_tickets", tls.session_tickets);
  readPath(s, "ticket_key_file", tls.ticket_key_file);
  if (!tls.session_tickets && table->contains("ticket_key_file")) {
    fail(table->get("ticket_key_file")->source(),
         "ticket_key_file in " + s.label + " has no effect with session_tickets = false",
         "session_tickets = true, or no ticket_key_file");
  }
  readUint(s, "session_cache_size", tls.session_cache_size, 0, 10000000);
  Millis lifetime{tls.session_lifetime};
  readDuration(s, "session_lifetime", lifetime);
  tls.session_lifetime = std::chrono::duration_cast<std::chrono::seconds>(lifetime);
  if (tls.session_lifetime.count() == 0) tls.session_lifetime = std::chrono::seconds(1);
  readEnum(s, "client_verify", tls.client_verify, kClientVerify);
  readPath(s, "client_ca_file", tls.client_ca_file);
  readPath(s, "client_crl_file", tls.client_crl_file);
  readUint(s, "client_verify_depth", tls.client_verify_depth, 1, 16);
  if (tls.client_verify != tls::ClientVerify::None && tls.client_ca_file.empty()) {
    fail(table->get("client_verify")->source(),
         "client_verify in " + s.label + " needs client_ca_file", "the CA that signs client certificates");
  }
}

void Validator::parseAcceptProxy(const Section& listener, ListenerConfig& out) {
  readEnum(listener, "accept_proxy", out.accept_proxy, kAcceptProxy);
  readStringList(listener, "proxy_trusted", out.proxy_trusted);
  for (const std::string& text : out.proxy_trusted) {
    std::string error;
    if (!core::Cidr::parse(text, &error)) {
      fail(listener.table.get("proxy_trusted")->source(),
           "invalid CIDR " + quote(text) + " in proxy_trusted of " + listener.label + ": " + error,
           R"(networks like "10.0.0.0/8", "fd00::/8" or single addresses like "192.0.2.1")");
    }
  }
  if (out.accept_proxy == AcceptProxy::None && !out.proxy_trusted.empty()) {
    fail(listener.table.get("proxy_trusted")->source(),
         "proxy_trusted in " + listener.label + " has no effect with accept_proxy = \"none\"",
         "accept_proxy = \"v1\", \"v2\" or \"any\"");
  }
}

// A terminating route needs certificates; certificates nothing terminates with are a mistake.
void Validator::checkListenerModes(const Section& listener, const ListenerConfig& out) {
  bool terminates = !out.default_pool.empty() && out.mode == ListenerMode::Terminate;
  for (size_t i = 0; i < out.routes.size(); ++i) {
    if (out.routes[i].mode != ListenerMode::Terminate) continue;
    terminates = true;
    if (!out.has_tls) {
      const toml::array& routes = *listener.table.get("route")->as_array();
      fail(routes[i].source(),
           "route #" + std::to_string(i + 1) + " of " + listener.label +
               " terminates TLS but the listener has no [listener.tls] table",
           "a [listener.tls] table with certificates, or mode = \"passthrough\"");
    }
  }
  if (out.mode == ListenerMode::Terminate && !out.has_tls) {
    fail(listener.table.get("mode")->source(),
         listener.label + " has mode = \"terminate\" but no [listener.tls] table",
         "a [listener.tls] table with certificates");
  } else if (out.has_tls && !terminates) {
    fail(listener.table.get("tls")->source(),
         "[listener.tls] of " + listener.label + " has no effect: no route terminates TLS",
         "mode = \"terminate\" on the listener or a route");
  }
}

void Validator::parsePoolTls(const Section& pool, PoolConfig& out) {
  const toml::table* table = readTable(pool, "tls", "[pool.tls]");
  if (!table) return;
  out.tls_where = at(table->source());
  parseClientTls(Section{*table, "[pool.tls] of " + pool.label}, out.tls);
}

// [pool.tls], and [pool.health.tls] for a check that speaks TLS to a pool that does not.
void Validator::parseClientTls(const Section& s, tls::ClientTlsConfig& tls) {
  tls.enabled = true;
  checkKeys(s, concat(kClientTlsKeys, kPolicyKeys));
  readPath(s, "ca_file", tls.ca_file);
  readPath(s, "ca_dir", tls.ca_dir);
  readBool(s, "verify", tls.verify);
  if (tls.verify && tls.ca_file.empty() && tls.ca_dir.empty()) {
    fail(s.table.source(), s.label + " verifies backends but names no CA",
         "ca_file or ca_dir (the internal CA), or verify = false");
  }
  readString(s, "verify_name", tls.verify_name);
  readString(s, "sni", tls.sni);
  readBool(s, "forward_sni", tls.forward_sni);
  if (tls.forward_sni && !tls.sni.empty()) {
    fail(s.table.get("sni")->source(), "both sni and forward_sni = true in " + s.label,
         "a fixed sni or forward_sni, not both");
  }
  readPath(s, "client_certificate", tls.client_certificate);
  readPath(s, "client_key", tls.client_key);
  if (!tls.client_key.empty() && tls.client_certificate.empty()) {
    fail(s.table.get("client_key")->source(), "client_key without client_certificate in " + s.label,
         "client_certificate (the chain) with its key");
  }
  parsePolicy(s, tls.policy);
  readAlpnList(s, "alpn", tls.alpn);
  readBool(s, "forward_alpn", tls.forward_alpn);
  readBool(s, "session_reuse", tls.session_reuse);
}

}  // namespace ringlb::balancer::config_detail
