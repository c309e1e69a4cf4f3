// [crypto] applied to OpenSSL: which providers and engine implement the algorithms ringlb
// uses, and the property query every fetch (and so every SSL_CTX) goes through.
//
// Providers: the list is exactly what gets loaded, in order (OSSL_PROVIDER_load, by name from
// OpenSSL's modules directory or by absolute path). An empty list keeps OpenSSL's behaviour:
// the "default" provider. A non-empty list without "default" means no default provider (e.g.
// ["fips", "base"]): everything ringlb needs must then come from the listed providers, and
// start-up fails, naming the algorithm, when it does not.
//
// Both functions verify, before reporting success, that every algorithm ringlb needs can be
// fetched: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, ECDSA, RSA, X25519, and the TLS hashes
// and KDFs (SHA-256, SHA-384, HKDF, TLS1-PRF).
#pragma once

#include <string>
#include <vector>

#include "tls/tls_config.h"

namespace ringlb::tls {

// Applies `config` to OpenSSL's default library context and the process-wide ENGINE tables
// (which every SSL_CTX_new uses). Call once, at start-up, before any SSL_CTX is created; it
// cannot be undone (providers stay loaded, the engine stays initialised).
// Checks the configuration in a private library context first, so a failure leaves the
// default context untouched (except that a failed engine was loaded and released).
// On success fills `report` (one line each, no prefix):
//   "providers: default"            "property query: none"        "engine: none"
//   "AES-128-GCM: provider default" "RSA (2048 signing): engine qatengine"
//   "TLS hashes and KDFs (SHA-256, SHA-384, HKDF, TLS1-PRF): provider default"
//   "AES-NI: present, enabled"      (tls/cpu_features.h, one line per CPU extension)
// On failure returns false with `error` naming the provider, engine, property query or
// algorithm and OpenSSL's reasons from its error queue; for the afalg engine on a kernel
// without AF_ALG sockets it says that the kernel's AF_ALG interface is not available.
bool applyCryptoConfig(const CryptoConfig& config, std::string* error, std::vector<std::string>* report);

// The same checks in a private library context that is freed afterwards: nothing
// process-wide changes (an engine is loaded, initialised, finished and released). For a
// reload, which cannot apply [crypto] but must refuse a broken one.
bool checkCryptoConfig(const CryptoConfig& config, std::string* error);

// Unloads the providers applyCryptoConfig() loaded (at exit, after every SSL_CTX is gone).
void releaseCrypto();

// Where OSSL_PROVIDER_load looks for a provider given by name (OpenSSL's MODULESDIR; the
// OPENSSL_MODULES environment variable overrides it).
std::string providerModulesDir();

}  // namespace ringlb::tls
