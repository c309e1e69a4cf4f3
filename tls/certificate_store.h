// Every server certificate of a ServerTlsConfig, parsed once, shared read-only by the
// per-worker ServerContexts (tls/server_context.h).
//
// Contract:
//  - load() reads all files (before privileges are dropped): `certificates` in order, then
//    every *.pem / *.crt of `certificate_dir` sorted by file name. A file holds a PEM chain,
//    leaf first, and its private key unless "<file>.key" exists (then the key is there). Files
//    of certificate_dir holding only a key are skipped. The key must match the leaf.
//  - Names served by a certificate: its DNS SANs, lower-cased; its CN if it has no DNS SAN.
//  - An Identity is the set of certificates served for a name: at most one per key type
//    (RSA, ECDSA, other), so one RSA and one ECDSA certificate for the same names are both
//    installed and OpenSSL picks by the client's signature_algorithms. Names with the same set
//    share one Identity (one SSL_CTX per identity and worker).
//  - Errors are collected (all files are tried); any error means `store` is null. Warnings
//    (key file readable by group/others, expired certificate, duplicate name for a key type,
//    key type other than RSA/ECDSA) never fail the load.
//  - The store is immutable after load(); its X509/EVP_PKEY objects are only ever read (and
//    up-ref'd by SSL_CTX_use_*), which OpenSSL allows from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/ssl_ptr.h"
#include "tls/tls_config.h"

namespace ringlb::tls {

// File contents that replace what is on disk, by path as the config names it (the runtime
// API's "commit ssl cert" rebuilds a generation with the operator's PEM in place of a file).
using PemOverlay = std::map<std::string, std::string>;

enum class KeyType : uint8_t { Rsa, Ecdsa, Other };
const char* keyTypeName(KeyType type);  // "RSA", "ECDSA", "other"

struct Certificate {
  std::string path;                // as written in the config, or dir + "/" + file name
  X509Ptr leaf;
  std::vector<X509Ptr> chain;      // intermediates, file order
  EvpPkeyPtr key;
  KeyType key_type = KeyType::Other;
  std::vector<std::string> names;  // lower-case DNS SANs, or the CN
};

struct Identity {
  size_t index = 0;                              // position in CertificateStore::identities()
  std::vector<const Certificate*> certificates;  // one per key type, owned by the store
};

class CertificateStore {
 public:
  struct LoadResult {
    std::shared_ptr<const CertificateStore> store;  // null if errors is not empty
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
  };

  // Server certificates, plus client_ca_file / client_crl_file when client_verify is on.
  // With an overlay, a certificate file (or its "<file>.key") found in it is read from there
  // instead of the disk; a certificate PEM that holds a private key then needs no key file.
  static LoadResult load(const ServerTlsConfig& config, const PemOverlay* overlay = nullptr);

  // Exact name, then "*.<rest>" where <rest> is `server_name` minus its first label (a
  // wildcard covers exactly one label). Case-insensitive; one trailing dot ignored. nullptr if
  // nothing matches. Allocation-free.
  const Identity* findByName(std::string_view server_name) const;
  // findByName(), else the default identity (never null). Empty `server_name` = no SNI.
  const Identity& select(std::string_view server_name) const;
  const Identity& defaultIdentity() const { return identities_[default_]; }

  const std::vector<Identity>& identities() const { return identities_; }
  const std::vector<std::unique_ptr<Certificate>>& certificates() const { return certs_; }
  const std::vector<X509Ptr>& clientCas() const { return client_cas_; }
  const std::vector<X509CrlPtr>& clientCrls() const { return client_crls_; }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameMap = std::unordered_map<std::string, size_t, NameHash, std::equal_to<>>;

  void buildIdentities(const ServerTlsConfig& config, LoadResult* result);

  std::vector<std::unique_ptr<Certificate>> certs_;
  std::vector<Identity> identities_;
  NameMap by_name_;  // lower-case name ("*.example.com" for wildcards) -> identity index
  size_t default_ = 0;
  std::vector<X509Ptr> client_cas_;
  std::vector<X509CrlPtr> client_crls_;
};

}  // namespace ringlb::tls
