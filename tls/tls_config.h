// Plain TLS settings, as validated by the configuration loader (balancer/config.cc) and
// turned into OpenSSL contexts by tls/server_context.h and tls/client_context.h. No OpenSSL
// types here, so the config code and its tests do not link libssl.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ringlb::tls {

// Protocol versions ringlb will ever speak. SSLv3, TLS 1.0 and 1.1 are not representable.
enum class TlsVersion : uint8_t { Tls12, Tls13 };

// Mozilla's server-side TLS guidelines (wiki.mozilla.org/Security/Server_Side_TLS, v5.7):
//  modern:       TLS 1.3 only.
//  intermediate: TLS 1.2 + 1.3; TLS 1.2 limited to ECDHE with AEAD ciphers.
enum class TlsPreset : uint8_t { Modern, Intermediate };

// A protocol policy: the preset fills every field the operator did not set explicitly.
// Empty strings mean "the preset's value". Renegotiation and compression are always off.
struct TlsPolicy {
  TlsPreset preset = TlsPreset::Intermediate;
  bool min_set = false;
  bool max_set = false;
  TlsVersion min_version = TlsVersion::Tls12;
  TlsVersion max_version = TlsVersion::Tls13;
  std::string ciphers;               // TLS 1.2 cipher list (OpenSSL syntax)
  std::string ciphersuites;          // TLS 1.3 suites, colon-separated
  std::string groups;                // e.g. "X25519:P-256:P-384"
  std::string signature_algorithms;  // e.g. "ECDSA+SHA256:RSA-PSS+SHA256"
};

enum class ClientVerify : uint8_t { None, Optional, Required };

// The front side of a terminating listener.
struct ServerTlsConfig {
  // PEM files, each holding a certificate chain (leaf first) and, unless a file with the
  // same name and the extra suffix ".key" exists, its private key. Names served are the
  // leaf's DNS SANs (or its CN if it has no SAN). Two files for the same name with an RSA
  // and an ECDSA key are both served; the client's signature_algorithms pick one.
  std::vector<std::string> certificates;
  std::string certificate_dir;  // every *.pem / *.crt in it, as if listed (sorted by name)
  // The file whose certificate is served when SNI is absent or matches nothing (and
  // strict_sni is off); "" = the first certificate loaded.
  std::string default_certificate;
  bool strict_sni = false;      // unknown or absent SNI: unrecognized_name alert
  TlsPolicy policy;
  std::vector<std::string> alpn;  // server preference order, e.g. {"h2", "http/1.1"}
  bool session_tickets = true;
  // Ticket keys (see tls/ticket_keys.h): "" = random keys per process (tickets then only
  // resume on the same ringlb instance).
  std::string ticket_key_file;
  uint32_t session_cache_size = 20000;  // server-side session cache per worker; 0 = off
  std::chrono::seconds session_lifetime{300};
  // Client certificates (mTLS from clients).
  ClientVerify client_verify = ClientVerify::None;
  std::string client_ca_file;
  std::string client_crl_file;
  uint32_t client_verify_depth = 4;
};

// The back side: re-encryption from ringlb to the backends of one pool.
struct ClientTlsConfig {
  bool enabled = false;
  std::string ca_file;  // the internal CA the backends' certificates chain to
  std::string ca_dir;   // hashed directory (c_rehash) of CA certificates
  bool verify = true;   // false only for lab use; logged as a warning at start-up
  // Name the backend certificate must carry (DNS SAN, or IP SAN when it is an address).
  // "" = the SNI sent, or the backend's IP address if no SNI is sent.
  std::string verify_name;
  // SNI sent to the backend: a fixed name, or the client's own SNI (forward_sni).
  std::string sni;
  bool forward_sni = false;
  std::string client_certificate;  // PEM chain for mTLS to backends ("" = none)
  std::string client_key;          // "" = the key is in client_certificate
  TlsPolicy policy;
  std::vector<std::string> alpn;   // ALPN offered to backends
  bool forward_alpn = false;       // offer the protocol negotiated with the client instead
  bool session_reuse = true;       // one cached session per backend, resumed on reconnect
};

// [crypto]: where OpenSSL's algorithms come from, and how handshakes and records use them.
// Process-wide (one OpenSSL library context); see tls/crypto_setup.h.
enum class KtlsMode : uint8_t { Off, Auto, On };

struct CryptoConfig {
  // Reload compares the running [crypto] with the new one (it applies only at start-up).
  bool operator==(const CryptoConfig&) const = default;
  // OpenSSL 3 providers to load, by name ("default", "legacy", "qatprovider") or by path to
  // the module. Empty = OpenSSL's default provider only.
  std::vector<std::string> providers;
  // Property query applied to every algorithm fetch, e.g. "?provider=qatprovider" (prefer
  // QAT, fall back to the default provider) or "provider=default".
  std::string property_query;
  // A legacy ENGINE by id (e.g. "afalg", "padlock", a QAT engine) and the algorithm classes
  // handed to it: "RSA", "EC", "DH", "PKEY", "CIPHERS", "DIGESTS" (empty = "ALL").
  std::string engine;
  std::vector<std::string> engine_algorithms;
  // Run TLS handshakes as OpenSSL async jobs (SSL_MODE_ASYNC): an accelerator's pending
  // operation parks the connection on the job's wait fd instead of blocking the worker.
  bool async = false;
  // Kernel TLS after the handshake: Auto = where the kernel supports it, On = start-up fails
  // without it, Off = user-space records always.
  KtlsMode ktls = KtlsMode::Auto;
};

}  // namespace ringlb::tls
