#include "tls/policy.h"

#include <openssl/err.h>

#include <cstring>

#include "tls/ssl_ptr.h"

namespace ringlb::tls {
namespace {

// Mozilla Server Side TLS v5.7 "intermediate" (wiki.mozilla.org/Security/Server_Side_TLS),
// restricted to ECDHE key exchange as ringlb's policy: no DHE (costly, and needs dhparams).
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// RFC 8446 s9.1 mandatory suite first, then the other two AEADs OpenSSL implements.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

int protoVersion(TlsVersion version) {
  return version == TlsVersion::Tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  ERR_clear_error();
  return false;
}

std::string quoted(const std::string& setting, const std::string& value) {
  return setting + " \"" + value + "\"";
}

// Counts the TLS 1.3 suites and the TLS 1.2 ciphers the context ended up with. OpenSSL keeps
// both in one list (SSL_CTX_get_ciphers(3)); TLS 1.3 suites report "TLSv1.3" as version.
void countCiphers(SSL_CTX* ctx, int* tls12, int* tls13) {
  *tls12 = 0;
  *tls13 = 0;
  STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(list, i);
    if (std::strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0) {
      ++*tls13;
    } else {
      ++*tls12;
    }
  }
}

bool applyVersions(SSL_CTX* ctx, const TlsPolicy& policy, std::string* error) {
  TlsVersion min = policy.preset == TlsPreset::Modern ? TlsVersion::Tls13 : TlsVersion::Tls12;
  TlsVersion max = TlsVersion::Tls13;
  if (policy.min_set) min = policy.min_version;
  if (policy.max_set) max = policy.max_version;
  if (protoVersion(min) > protoVersion(max)) {
    return fail(error, std::string("min_version ") + versionName(min) + " is above max_version " +
                           versionName(max));
  }
  if (SSL_CTX_set_min_proto_version(ctx, protoVersion(min)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, protoVersion(max)) != 1) {
    return fail(error, withOpensslErrors(std::string("cannot set protocol versions ") +
                                         versionName(min) + ".." + versionName(max)));
  }
  return true;
}

bool applyCiphers(SSL_CTX* ctx, const TlsPolicy& policy, std::string* error) {
  // TLS 1.2 list. Modern has none of its own; "" would make SSL_CTX_set_cipher_list fail, and
  // TLS 1.2 is disabled by the version range anyway, so keep OpenSSL's default there.
  const std::string& ciphers = policy.ciphers;
  const char* list = !ciphers.empty() ? ciphers.c_str() : presetCiphers(policy.preset);
  if (*list != '\0' && SSL_CTX_set_cipher_list(ctx, list) != 1) {
    // OpenSSL's own reason ("no cipher match") adds nothing to ours.
    return fail(error, quoted("ciphers", list) + ": no TLS 1.2 cipher recognised");
  }
  const std::string& suites = policy.ciphersuites;
  const char* suite_list = !suites.empty() ? suites.c_str() : presetCiphersuites(policy.preset);
  // OpenSSL 3.0 skips unknown suite names silently (ssl/ssl_ciph.c ciphersuite_cb), so an
  // all-unknown list "succeeds" with zero suites: count what is left instead.
  if (SSL_CTX_set_ciphersuites(ctx, suite_list) != 1) {
    return fail(error, quoted("ciphersuites", suite_list) + ": no TLS 1.3 ciphersuite recognised");
  }
  int tls12 = 0;
  int tls13 = 0;
  countCiphers(ctx, &tls12, &tls13);
  if (tls13 == 0) {
    return fail(error, quoted("ciphersuites", suite_list) + ": no TLS 1.3 ciphersuite recognised");
  }
  if (tls12 == 0 && SSL_CTX_get_min_proto_version(ctx) < TLS1_3_VERSION) {
    return fail(error, quoted("ciphers", list) + ": no TLS 1.2 cipher recognised");
  }
  return true;
}

bool applyGroupsAndSigalgs(SSL_CTX* ctx, const TlsPolicy& policy, std::string* error) {
  const char* groups = !policy.groups.empty() ? policy.groups.c_str() : presetGroups(policy.preset);
  if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
    return fail(error, withOpensslErrors(quoted("groups", groups) + ": unknown group"));
  }
  if (!policy.signature_algorithms.empty()) {
    // SSL_CTX_set1_sigalgs_list(3): "ALG+HASH" or TLS 1.3 scheme names, colon-separated; it
    // fails on the first unknown entry.
    if (SSL_CTX_set1_sigalgs_list(ctx, policy.signature_algorithms.c_str()) != 1) {
      return fail(error, withOpensslErrors(quoted("signature_algorithms",
                                                  policy.signature_algorithms) +
                                           ": unknown signature algorithm"));
    }
  }
  return true;
}

}  // namespace

const char* versionName(TlsVersion version) {
  return version == TlsVersion::Tls13 ? "TLSv1.3" : "TLSv1.2";
}

const char* presetCiphers(TlsPreset preset) {
  return preset == TlsPreset::Modern ? "" : kIntermediateCiphers;
}

const char* presetCiphersuites(TlsPreset) { return kTls13Suites; }

const char* presetGroups(TlsPreset) { return kGroups; }

bool applyPolicy(SSL_CTX* ctx, const TlsPolicy& policy, bool server, std::string* error) {
  if (!applyVersions(ctx, policy, error)) return false;
  if (!applyCiphers(ctx, policy, error)) return false;
  if (!applyGroupsAndSigalgs(ctx, policy, error)) return false;
  // Renegotiation: RFC 8446 removed it and it is a DoS lever in TLS 1.2; compression: CRIME.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (server) SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  return true;
}

bool validatePolicy(const TlsPolicy& policy, std::string* error) {
  SslCtxPtr scratch(SSL_CTX_new(TLS_method()));
  if (!scratch) return fail(error, withOpensslErrors("cannot create an SSL_CTX"));
  return applyPolicy(scratch.get(), policy, true, error);
}

}  // namespace ringlb::tls
