// Traffic keys for kernel TLS: from what OpenSSL knows after a handshake to the kernel's
// tls12_crypto_info_* for each direction (tls/ktls_probe.h installs them).
//
// OpenSSL drives our connections through a memory BIO, so its own kTLS support (which needs
// a socket BIO) never applies; instead:
//  - TLS 1.3: the application traffic secrets are captured per SSL with the keylog callback
//    (OpenSSL 3.0 has no other public way to read them), then key and IV come from
//    HKDF-Expand-Label (RFC 8446 s7.3).
//  - TLS 1.2 (AEAD suites only): the key block is the TLS 1.2 PRF over the master secret and
//    both randoms (RFC 5246 s6.3), cut as RFC 5288 s3 (AES-GCM) / RFC 7905 s2 (ChaCha20).
//  - The record sequence number to continue from: a message callback counts the records of
//    each direction since the last key change (the peer's / our Finished in TLS 1.3, the
//    ChangeCipherSpec in TLS 1.2), e.g. the NewSessionTicket records a TLS 1.3 server has
//    already sent with its application key.
//
// Pure derivations (hkdfExpandLabel, tls12Prf, tls13Keys, tls12Keys) use only libcrypto and
// are tested against RFC 8448 and the TLS 1.2 PRF vector.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tls/ktls_plan.h"
#include "tls/ktls_probe.h"

namespace ringlb::tls {

// One direction's record protection, as the kernel wants it.
struct KtlsKeys {
  uint16_t version = 0;  // 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)
  KtlsCipher cipher = KtlsCipher::AesGcm128;
  uint8_t key[32] = {};
  uint8_t key_len = 0;
  // The 12-byte nonce base. TLS 1.3 and ChaCha20: the static IV, XORed with the sequence
  // number per record. TLS 1.2 AES-GCM: 4-byte salt (the key block's write IV) followed by
  // the 8-byte explicit nonce of the next record we send (we use the sequence number: unique
  // per key, which is all RFC 5288 s3 asks).
  uint8_t iv[12] = {};
  uint64_t seq = 0;  // sequence number of the next record

  // The kernel's view: salt = iv[0..4) and iv = iv[4..12) for AES-GCM, iv[0..12) for ChaCha.
  KtlsCryptoInfo cryptoInfo() const;
};

// HKDF-Expand-Label(secret, label, context, out.size()) with the "tls13 " prefix (RFC 8446
// s7.1). `digest` is an OpenSSL digest name ("SHA256"). False on an OpenSSL failure.
bool hkdfExpandLabel(const char* digest, std::span<const uint8_t> secret, std::string_view label,
                     std::span<const uint8_t> context, std::span<uint8_t> out);
// PRF(secret, label, seed) of TLS 1.2 (RFC 5246 s5) with `digest`.
bool tls12Prf(const char* digest, std::span<const uint8_t> secret, std::string_view label,
              std::span<const uint8_t> seed, std::span<uint8_t> out);

// TLS 1.3 keys of one direction from its application traffic secret.
bool tls13Keys(KtlsCipher cipher, std::span<const uint8_t> traffic_secret, uint64_t seq, KtlsKeys& out);
// TLS 1.2 keys of the client's (client_write) or the server's direction.
bool tls12Keys(KtlsCipher cipher, std::span<const uint8_t> master_secret,
               std::span<const uint8_t, 32> client_random, std::span<const uint8_t, 32> server_random,
               bool client_write, uint64_t seq, KtlsKeys& out);

// What has to be watched on one SSL from before its handshake so that keys can be extracted
// after it. Owned by the caller (e.g. embedded in TlsStream), registered with trackKtls();
// must outlive the SSL or be unregistered by freeing the SSL first.
struct KtlsTrack {
  uint8_t client_secret[48] = {};  // CLIENT_TRAFFIC_SECRET_0 (TLS 1.3)
  uint8_t server_secret[48] = {};  // SERVER_TRAFFIC_SECRET_0
  uint8_t client_secret_len = 0;
  uint8_t server_secret_len = 0;
  uint64_t tx_records = 0;  // records written since our last key change
  uint64_t rx_records = 0;  // records read since the peer's last key change
  bool key_update = false;  // a TLS 1.3 KeyUpdate went either way: the secrets above are stale
};

// Installs the keylog callback on `ctx` (every SSL_CTX an SSL may use, including the ones
// SNI switches to) so tracked SSLs keep their TLS 1.3 traffic secrets; untracked SSLs pay
// one hex-formatting of each secret during the handshake and nothing else. Only call when
// kTLS may be used.
void captureKtlsSecrets(SSL_CTX* ctx);
// Tracks `ssl` into `track` (SSL ex_data + message callback). Before the handshake starts.
bool trackKtls(SSL* ssl, KtlsTrack* track);

// The keys of our sending (tx) or receiving direction on `ssl` after its handshake; "" or
// why not ("ktls: TLS 1.3 traffic secrets were not captured", ...).
std::string extractKtlsKeys(SSL* ssl, const KtlsTrack& track, bool tx, KtlsKeys& out);

}  // namespace ringlb::tls
