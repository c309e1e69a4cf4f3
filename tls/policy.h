// Turns a TlsPolicy (tls/tls_config.h) into SSL_CTX settings.
//
// Contract:
//  - applyPolicy() sets protocol versions, TLS 1.2 ciphers, TLS 1.3 ciphersuites, groups and
//    signature algorithms on `ctx`, and always SSL_OP_NO_RENEGOTIATION and
//    SSL_OP_NO_COMPRESSION. The preset supplies every value the policy leaves unset/empty:
//      Modern:       TLS 1.3 only, OpenSSL's three TLS 1.3 AEAD suites.
//      Intermediate: TLS 1.2 + 1.3; TLS 1.2 ciphers = ECDHE-ECDSA/ECDHE-RSA with AES-GCM or
//                    CHACHA20-POLY1305 only.
//    Groups default to X25519:P-256:P-384 for both presets; signature algorithms default to
//    OpenSSL's list. Explicit min/max versions replace the preset's.
//  - Nothing below TLS 1.2 is ever enabled (TlsVersion cannot express it).
//  - On failure returns false and sets *error (if non-null) to a message naming the setting
//    and the value, e.g. `ciphersuites "TLS_FOO": no TLS 1.3 ciphersuite recognised`. The
//    context may then be half-configured: discard it.
//  - `server` selects server-side defaults (clients pick the cipher order on both sides:
//    Mozilla's presets leave server preference off, all listed ciphers being strong).
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "tls/tls_config.h"

namespace ringlb::tls {

bool applyPolicy(SSL_CTX* ctx, const TlsPolicy& policy, bool server, std::string* error);

// Applies `policy` to a scratch context and reports the first problem; for config checks.
bool validatePolicy(const TlsPolicy& policy, std::string* error);

// The preset values, exposed for documentation and tests.
const char* presetCiphers(TlsPreset preset);       // TLS 1.2 list ("" for Modern)
const char* presetCiphersuites(TlsPreset preset);  // TLS 1.3 suites
const char* presetGroups(TlsPreset preset);

const char* versionName(TlsVersion version);  // "TLSv1.2" / "TLSv1.3"

}  // namespace ringlb::tls
