#include "tls/ktls_keys.h"

#include <linux/tls.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <memory>

namespace ringlb::tls {
namespace {

struct KdfFree {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};

// One EVP_KDF derivation ("HKDF" or "TLS1-PRF") with the given parameters.
bool derive(const char* kdf_name, OSSL_PARAM* params, std::span<uint8_t> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, kdf_name, nullptr);
  if (kdf == nullptr) return false;
  std::unique_ptr<EVP_KDF_CTX, KdfFree> ctx(EVP_KDF_CTX_new(kdf));
  EVP_KDF_free(kdf);
  return ctx && EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) == 1;
}

uint8_t keyLength(KtlsCipher cipher) { return cipher == KtlsCipher::AesGcm128 ? 16 : 32; }
// The suite's hash: SHA-384 only for AES-256-GCM (TLS_AES_256_GCM_SHA384 and the TLS 1.2
// *-AES256-GCM-SHA384 suites; there are no AES-256-GCM-SHA256 suites).
const char* suiteDigest(KtlsCipher cipher) { return cipher == KtlsCipher::AesGcm256 ? "SHA384" : "SHA256"; }

void putSeq(uint8_t* out, uint64_t seq) {
  for (int i = 7; i >= 0; --i, seq >>= 8) out[i] = static_cast<uint8_t>(seq);
}

int trackIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "LABEL <client_random hex> <secret hex>" (the NSS key log format, SSL_CTX_set_keylog_callback(3)).
void onKeylog(const SSL* ssl, const char* line) {
  auto* track = static_cast<KtlsTrack*>(SSL_get_ex_data(ssl, trackIndex()));
  if (track == nullptr) return;
  std::string_view text(line);
  uint8_t* dest = nullptr;
  uint8_t* dest_len = nullptr;
  if (text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
    dest = track->client_secret;
    dest_len = &track->client_secret_len;
  } else if (text.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
    dest = track->server_secret;
    dest_len = &track->server_secret_len;
  } else {
    return;
  }
  size_t space = text.rfind(' ');
  std::string_view hex = text.substr(space + 1);
  if (hex.size() % 2 != 0 || hex.size() / 2 > sizeof(track->client_secret)) return;
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = hexValue(hex[2 * i]);
    int lo = hexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return;
    dest[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *dest_len = static_cast<uint8_t>(hex.size() / 2);
}

// Counts records per direction since the last key change (SSL_set_msg_callback(3)): OpenSSL
// reports each record header as it writes or reads that record (SSL3_RT_HEADER), and each
// handshake message after the record carrying it.
void onMessage(int write_p, int, int content_type, const void* buf, size_t len, SSL* ssl, void* arg) {
  auto* track = static_cast<KtlsTrack*>(arg);
  uint64_t& records = write_p ? track->tx_records : track->rx_records;
  switch (content_type) {
    case SSL3_RT_HEADER:
      // A ChangeCipherSpec record: in TLS 1.2 the next record (Finished) is the first under
      // the new keys (RFC 5246 s7.1). OpenSSL reports no message for a CCS it reads, only
      // this header. TLS 1.3's middlebox-compatibility CCS changes nothing; Finished resets
      // again below.
      if (len >= 1 && static_cast<const uint8_t*>(buf)[0] == SSL3_RT_CHANGE_CIPHER_SPEC) {
        records = 0;
      } else {
        ++records;
      }
      break;
    case SSL3_RT_HANDSHAKE: {
      if (len == 0) break;
      uint8_t type = static_cast<const uint8_t*>(buf)[0];
      // TLS 1.3: application keys start right after each side's Finished (RFC 8446 s7.2).
      if (type == SSL3_MT_FINISHED && SSL_version(ssl) == TLS1_3_VERSION) records = 0;
      if (type == SSL3_MT_KEY_UPDATE) track->key_update = true;
      break;
    }
    default: break;
  }
}

// AES-GCM (RFC 5288 / RFC 8446 5.3): the kernel takes the 12-byte nonce as a 4-byte salt and
// an 8-byte IV, and the record sequence number to start from.
template <typename Info>
void fillAesGcm(KtlsCryptoInfo& info, uint16_t cipher_type, const KtlsKeys& keys) {
  auto* c = reinterpret_cast<Info*>(info.bytes);
  c->info = {keys.version, cipher_type};
  std::memcpy(c->key, keys.key, sizeof(c->key));
  std::memcpy(c->salt, keys.iv, sizeof(c->salt));
  std::memcpy(c->iv, keys.iv + sizeof(c->salt), sizeof(c->iv));
  putSeq(c->rec_seq, keys.seq);
  info.size = sizeof(*c);
}

}  // namespace

KtlsCryptoInfo KtlsKeys::cryptoInfo() const {
  KtlsCryptoInfo info;
  switch (cipher) {
    case KtlsCipher::AesGcm128:
      fillAesGcm<tls12_crypto_info_aes_gcm_128>(info, TLS_CIPHER_AES_GCM_128, *this);
      break;
    case KtlsCipher::AesGcm256:
      fillAesGcm<tls12_crypto_info_aes_gcm_256>(info, TLS_CIPHER_AES_GCM_256, *this);
      break;
    case KtlsCipher::Chacha20Poly1305: {
      auto* c = reinterpret_cast<tls12_crypto_info_chacha20_poly1305*>(info.bytes);
      c->info = {version, TLS_CIPHER_CHACHA20_POLY1305};
      std::memcpy(c->key, key, sizeof(c->key));
      std::memcpy(c->iv, iv, sizeof(c->iv));
      putSeq(c->rec_seq, seq);
      info.size = sizeof(*c);
      break;
    }
  }
  return info;
}

bool hkdfExpandLabel(const char* digest, std::span<const uint8_t> secret, std::string_view label,
                     std::span<const uint8_t> context, std::span<uint8_t> out) {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>; }
  uint8_t info[2 + 1 + 255 + 1 + 255];
  constexpr std::string_view kPrefix = "tls13 ";
  if (out.size() > 0xffff || kPrefix.size() + label.size() > 255 || context.size() > 255) return false;
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(out.size() >> 8);
  info[n++] = static_cast<uint8_t>(out.size());
  info[n++] = static_cast<uint8_t>(kPrefix.size() + label.size());
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = static_cast<uint8_t>(context.size());
  if (!context.empty()) std::memcpy(info + n, context.data(), context.size());
  n += context.size();
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  return derive("HKDF", params, out);
}

bool tls12Prf(const char* digest, std::span<const uint8_t> secret, std::string_view label,
              std::span<const uint8_t> seed, std::span<uint8_t> out) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, const_cast<uint8_t*>(secret.data()), secret.size()),
      // Several seed parameters are concatenated: label + seed (RFC 5246 s5).
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, const_cast<char*>(label.data()), label.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, const_cast<uint8_t*>(seed.data()), seed.size()),
      OSSL_PARAM_construct_end(),
  };
  return derive("TLS1-PRF", params, out);
}

bool tls13Keys(KtlsCipher cipher, std::span<const uint8_t> traffic_secret, uint64_t seq, KtlsKeys& out) {
  out = {};
  out.version = TLS_1_3_VERSION;
  out.cipher = cipher;
  out.key_len = keyLength(cipher);
  out.seq = seq;
  const char* digest = suiteDigest(cipher);
  return hkdfExpandLabel(digest, traffic_secret, "key", {}, std::span(out.key, out.key_len)) &&
         hkdfExpandLabel(digest, traffic_secret, "iv", {}, std::span(out.iv, sizeof(out.iv)));
}

bool tls12Keys(KtlsCipher cipher, std::span<const uint8_t> master_secret,
               std::span<const uint8_t, 32> client_random, std::span<const uint8_t, 32> server_random,
               bool client_write, uint64_t seq, KtlsKeys& out) {
  out = {};
  out.version = TLS_1_2_VERSION;
  out.cipher = cipher;
  out.key_len = keyLength(cipher);
  out.seq = seq;
  // key_block = PRF(master, "key expansion", server_random + client_random): client MAC key,
  // server MAC key (both empty for AEAD suites), client key, server key, client IV, server
  // IV (RFC 5246 s6.3). The IV is 4 bytes for AES-GCM (the salt, RFC 5288 s3), 12 for
  // ChaCha20-Poly1305 (RFC 7905 s2).
  const size_t fixed_iv = cipher == KtlsCipher::Chacha20Poly1305 ? 12 : 4;
  uint8_t seed[64];
  std::memcpy(seed, server_random.data(), 32);
  std::memcpy(seed + 32, client_random.data(), 32);
  uint8_t block[2 * 32 + 2 * 12];
  const size_t block_len = 2 * out.key_len + 2 * fixed_iv;
  if (!tls12Prf(suiteDigest(cipher), master_secret, "key expansion", seed, std::span(block, block_len))) return false;
  const uint8_t* key = block + (client_write ? 0 : out.key_len);
  const uint8_t* iv = block + 2 * out.key_len + (client_write ? 0 : fixed_iv);
  std::memcpy(out.key, key, out.key_len);
  std::memcpy(out.iv, iv, fixed_iv);
  if (fixed_iv == 4) putSeq(out.iv + 4, seq);  // our explicit nonces continue from here
  OPENSSL_cleanse(block, sizeof(block));
  return true;
}

void captureKtlsSecrets(SSL_CTX* ctx) {
  trackIndex();  // allocate the index before any worker thread races for it
  SSL_CTX_set_keylog_callback(ctx, onKeylog);
}

bool trackKtls(SSL* ssl, KtlsTrack* track) {
  *track = {};
  if (SSL_set_ex_data(ssl, trackIndex(), track) != 1) return false;
  SSL_set_msg_callback(ssl, onMessage);
  SSL_set_msg_callback_arg(ssl, track);
  return true;
}

std::string extractKtlsKeys(SSL* ssl, const KtlsTrack& track, bool tx, KtlsKeys& out) {
  const SSL_CIPHER* suite = SSL_get_current_cipher(ssl);
  if (suite == nullptr) return "ktls: no cipher negotiated";
  std::optional<KtlsCipher> cipher = ktlsCipherFromName(SSL_CIPHER_get_name(suite));
  if (!cipher) return std::string("ktls: cipher ") + SSL_CIPHER_get_name(suite) + " has no kernel equivalent";
  if (track.key_update) return "ktls: a KeyUpdate changed the traffic keys";
  const bool server = SSL_is_server(ssl) == 1;
  const bool client_write = tx != server;  // the direction the client writes
  const uint64_t seq = tx ? track.tx_records : track.rx_records;
  switch (SSL_version(ssl)) {
    case TLS1_3_VERSION: {
      const uint8_t* secret = client_write ? track.client_secret : track.server_secret;
      size_t len = client_write ? track.client_secret_len : track.server_secret_len;
      if (len == 0) return "ktls: TLS 1.3 traffic secrets were not captured";
      if (!tls13Keys(*cipher, std::span(secret, len), seq, out)) return "ktls: HKDF failed";
      return "";
    }
    case TLS1_2_VERSION: {
      const SSL_SESSION* session = SSL_get_session(ssl);
      uint8_t master[SSL_MAX_MASTER_KEY_LENGTH];
      size_t master_len = session != nullptr ? SSL_SESSION_get_master_key(session, master, sizeof(master)) : 0;
      uint8_t client_random[32], server_random[32];
      if (master_len == 0 || SSL_get_client_random(ssl, client_random, 32) != 32 ||
          SSL_get_server_random(ssl, server_random, 32) != 32) {
        return "ktls: TLS 1.2 master secret unavailable";
      }
      bool ok = tls12Keys(*cipher, std::span(master, master_len), client_random, server_random, client_write, seq, out);
      OPENSSL_cleanse(master, sizeof(master));
      return ok ? "" : "ktls: TLS 1.2 PRF failed";
    }
    default: return std::string("ktls: ") + SSL_get_version(ssl) + " is not supported by kTLS";
  }
}

}  // namespace ringlb::tls
