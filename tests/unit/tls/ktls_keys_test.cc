// kTLS key extraction: the derivations against published vectors (RFC 8448, the TLS 1.2 PRF
// vector from the IETF TLS WG list), and a live cross-check: a real handshake between two
// OpenSSL SSL objects, keys extracted for both ends, and records OpenSSL wrote decrypted
// with those keys and sequence numbers by plain EVP AEAD calls. That proves what the kernel
// would be given, without a kernel that has the TLS ULP.
#include "tls/ktls_keys.h"

#include <gtest/gtest.h>
#include <linux/tls.h>
#include <openssl/evp.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_pki.h"

namespace ringlb::tls {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes unhex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::string hex(const uint8_t* data, size_t len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

// RFC 8448 section 3 (Simple 1-RTT Handshake), TLS_AES_128_GCM_SHA256.
TEST(KtlsKeysTest, Tls13ApplicationKeysMatchRfc8448) {
  struct Vector {
    const char* secret;
    const char* key;
    const char* iv;
  } vectors[] = {
      // {client} derive write traffic keys for application data
      {"9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5", "17422dda596ed5d9acd890e3c63f5051",
       "5b78923dee08579033e523d9"},
      // {server} derive write traffic keys for application data
      {"a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", "9f02283b6c9c07efc26bb9f2ac92e356",
       "cf782b88dd83549aadf1e984"},
  };
  for (const Vector& v : vectors) {
    KtlsKeys keys;
    ASSERT_TRUE(tls13Keys(KtlsCipher::AesGcm128, unhex(v.secret), 1, keys));
    EXPECT_EQ(hex(keys.key, keys.key_len), v.key);
    EXPECT_EQ(hex(keys.iv, sizeof(keys.iv)), v.iv);
    EXPECT_EQ(keys.version, TLS_1_3_VERSION);
    EXPECT_EQ(keys.seq, 1u);
  }
}

TEST(KtlsKeysTest, HkdfExpandLabelMatchesRfc8448HandshakeKeys) {
  // {server} derive write traffic keys for handshake data (RFC 8448 section 3).
  Bytes secret = unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
  uint8_t key[16], iv[12];
  ASSERT_TRUE(hkdfExpandLabel("SHA256", secret, "key", {}, key));
  ASSERT_TRUE(hkdfExpandLabel("SHA256", secret, "iv", {}, iv));
  EXPECT_EQ(hex(key, sizeof(key)), "3fce516009c21727d0f2e4e86ee403bc");
  EXPECT_EQ(hex(iv, sizeof(iv)), "5d313eb2671276ee13000b30");
}

TEST(KtlsKeysTest, Tls12PrfMatchesPublishedSha256Vector) {
  uint8_t out[100];
  ASSERT_TRUE(tls12Prf("SHA256", unhex("9bbe436ba940f017b17652849a71db35"), "test label",
                       unhex("a0ba9f936cda311827a6f796ffd5198c"), out));
  EXPECT_EQ(hex(out, sizeof(out)),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
            "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
            "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
            "87347b66");
}

TEST(KtlsKeysTest, CryptoInfoSplitsSaltAndIvTheWayTheKernelReadsThem) {
  KtlsKeys keys;
  keys.version = TLS_1_3_VERSION;
  keys.cipher = KtlsCipher::AesGcm128;
  keys.key_len = 16;
  for (uint8_t i = 0; i < 16; ++i) keys.key[i] = i;
  for (uint8_t i = 0; i < 12; ++i) keys.iv[i] = static_cast<uint8_t>(0xa0 + i);
  keys.seq = 0x0102030405060708;
  KtlsCryptoInfo info = keys.cryptoInfo();
  ASSERT_EQ(info.size, sizeof(tls12_crypto_info_aes_gcm_128));
  const auto* gcm = reinterpret_cast<const tls12_crypto_info_aes_gcm_128*>(info.bytes);
  EXPECT_EQ(gcm->info.version, TLS_1_3_VERSION);
  EXPECT_EQ(gcm->info.cipher_type, TLS_CIPHER_AES_GCM_128);
  EXPECT_EQ(hex(gcm->salt, 4), "a0a1a2a3");
  EXPECT_EQ(hex(gcm->iv, 8), "a4a5a6a7a8a9aaab");
  EXPECT_EQ(hex(gcm->key, 16), "000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ(hex(gcm->rec_seq, 8), "0102030405060708");  // big-endian, as on the wire

  keys.cipher = KtlsCipher::Chacha20Poly1305;
  keys.key_len = 32;
  info = keys.cryptoInfo();
  ASSERT_EQ(info.size, sizeof(tls12_crypto_info_chacha20_poly1305));
  const auto* chacha = reinterpret_cast<const tls12_crypto_info_chacha20_poly1305*>(info.bytes);
  EXPECT_EQ(chacha->info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
  EXPECT_EQ(hex(chacha->iv, 12), "a0a1a2a3a4a5a6a7a8a9aaab");  // no salt: the whole nonce base
}

// ---- live cross-check ----

struct Case {
  int version;
  const char* suite;  // TLS 1.3 ciphersuite or TLS 1.2 cipher list
  KtlsCipher cipher;
};

class KtlsLiveTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    ca_ = pki::makeCa("ktls CA");
    leaf_ = pki::makeLeaf(ca_, pki::spec("server.test", {"server.test"}));
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
    ASSERT_EQ(SSL_CTX_use_certificate(server_ctx_.get(), leaf_.cert.get()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx_.get(), leaf_.key.get()), 1);
    for (SSL_CTX* ctx : {server_ctx_.get(), client_ctx_.get()}) {
      SSL_CTX_set_min_proto_version(ctx, c.version);
      SSL_CTX_set_max_proto_version(ctx, c.version);
      if (c.version == TLS1_3_VERSION) {
        ASSERT_EQ(SSL_CTX_set_ciphersuites(ctx, c.suite), 1);
      } else {
        ASSERT_EQ(SSL_CTX_set_cipher_list(ctx, c.suite), 1);
      }
      captureKtlsSecrets(ctx);
    }
    server_.reset(SSL_new(server_ctx_.get()));
    client_.reset(SSL_new(client_ctx_.get()));
    ASSERT_TRUE(trackKtls(server_.get(), &server_track_));
    ASSERT_TRUE(trackKtls(client_.get(), &client_track_));
    ASSERT_TRUE(pki::handshake(client_.get(), server_.get()).ok);
    // Whatever the server sent after its handshake (TLS 1.3 tickets) is read by the client,
    // so both ends have moved past the same records.
    pki::readPostHandshake(client_.get());
  }

  KtlsKeys keys(SSL* ssl, const KtlsTrack& track, bool tx) {
    KtlsKeys out;
    std::string why = extractKtlsKeys(ssl, track, tx, out);
    EXPECT_EQ(why, "");
    return out;
  }

  // The raw bytes `writer` sent (the other end's read BIO holds them).
  static Bytes wire(SSL* reader) {
    Bytes out;
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_rbio(reader), buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
    return out;
  }

  pki::Ca ca_;
  pki::Leaf leaf_;
  SslCtxPtr server_ctx_, client_ctx_;
  SslPtr server_, client_;
  KtlsTrack server_track_, client_track_;
};

// Decrypts one application_data record with `keys` the way the kernel would (RFC 8446 s5.2-5.3
// for TLS 1.3; RFC 5288 s3 / RFC 7905 s2 with the RFC 5246 s6.2.3.3 additional data for
// TLS 1.2), returning the plaintext.
Bytes openRecord(const KtlsKeys& keys, const Bytes& record) {
  EXPECT_GE(record.size(), 5u + 16u);
  EXPECT_EQ(record[0], 23);  // application_data (the outer type in TLS 1.3)
  const EVP_CIPHER* cipher = keys.cipher == KtlsCipher::AesGcm128   ? EVP_aes_128_gcm()
                             : keys.cipher == KtlsCipher::AesGcm256 ? EVP_aes_256_gcm()
                                                                    : EVP_chacha20_poly1305();
  uint8_t nonce[12];
  std::memcpy(nonce, keys.iv, 12);
  size_t body = 5;
  Bytes aad;
  bool explicit_nonce = keys.version == TLS_1_2_VERSION && keys.cipher != KtlsCipher::Chacha20Poly1305;
  if (explicit_nonce) {
    std::memcpy(nonce + 4, record.data() + 5, 8);
    body += 8;
  } else {
    for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<uint8_t>(keys.seq >> (56 - 8 * i));
  }
  size_t len = record.size() - body - 16;
  if (keys.version == TLS_1_3_VERSION) {
    aad.assign(record.begin(), record.begin() + 5);
  } else {
    for (int i = 0; i < 8; ++i) aad.push_back(static_cast<uint8_t>(keys.seq >> (56 - 8 * i)));
    aad.insert(aad.end(), {record[0], record[1], record[2], static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes plain(len);
  int n = 0, tail = 0;
  bool ok = EVP_DecryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx, nullptr, nullptr, keys.key, nonce) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, plain.data(), &n, record.data() + body, static_cast<int>(len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, const_cast<uint8_t*>(record.data() + body + len)) == 1 &&
            EVP_DecryptFinal_ex(ctx, plain.data() + n, &tail) == 1;
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_TRUE(ok) << "authentication failed: wrong key, nonce or sequence number";
  if (!ok) return {};
  if (keys.version == TLS_1_3_VERSION) {
    while (!plain.empty() && plain.back() == 0) plain.pop_back();  // padding
    EXPECT_EQ(plain.back(), 23);                                   // inner content type
    plain.pop_back();
  }
  return plain;
}

TEST_P(KtlsLiveTest, BothEndsDeriveTheSameKeysForEachDirection) {
  KtlsKeys server_tx = keys(server_.get(), server_track_, true);
  KtlsKeys client_rx = keys(client_.get(), client_track_, false);
  KtlsKeys client_tx = keys(client_.get(), client_track_, true);
  KtlsKeys server_rx = keys(server_.get(), server_track_, false);
  EXPECT_EQ(server_tx.cipher, GetParam().cipher);
  EXPECT_EQ(hex(server_tx.key, server_tx.key_len), hex(client_rx.key, client_rx.key_len));
  EXPECT_EQ(server_tx.seq, client_rx.seq);
  EXPECT_EQ(hex(client_tx.key, client_tx.key_len), hex(server_rx.key, server_rx.key_len));
  EXPECT_EQ(client_tx.seq, server_rx.seq);
  EXPECT_NE(hex(server_tx.key, server_tx.key_len), hex(client_tx.key, client_tx.key_len));
  if (GetParam().version == TLS1_3_VERSION) {
    EXPECT_EQ(server_tx.seq, 2u);  // OpenSSL's two NewSessionTickets went with the application key
    EXPECT_EQ(client_tx.seq, 0u);
  } else {
    EXPECT_EQ(server_tx.seq, 1u);  // Finished was record 0 of the new keys
    EXPECT_EQ(client_tx.seq, 1u);
  }
}

TEST_P(KtlsLiveTest, RecordsOpenSslWritesDecryptWithTheExtractedKeys) {
  for (int round = 0; round < 3; ++round) {
    KtlsKeys server_tx = keys(server_.get(), server_track_, true);
    std::string message = "response " + std::to_string(round);
    ASSERT_EQ(SSL_write(server_.get(), message.data(), static_cast<int>(message.size())), static_cast<int>(message.size()));
    Bytes plain = openRecord(server_tx, wire(client_.get()));
    EXPECT_EQ(std::string(plain.begin(), plain.end()), message);

    KtlsKeys client_tx = keys(client_.get(), client_track_, true);
    message = "request " + std::to_string(round);
    ASSERT_EQ(SSL_write(client_.get(), message.data(), static_cast<int>(message.size())), static_cast<int>(message.size()));
    plain = openRecord(client_tx, wire(server_.get()));
    EXPECT_EQ(std::string(plain.begin(), plain.end()), message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Suites, KtlsLiveTest,
    ::testing::Values(Case{TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", KtlsCipher::AesGcm128},
                      Case{TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", KtlsCipher::AesGcm256},
                      Case{TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", KtlsCipher::Chacha20Poly1305},
                      Case{TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", KtlsCipher::AesGcm128},
                      Case{TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", KtlsCipher::AesGcm256},
                      Case{TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", KtlsCipher::Chacha20Poly1305}),
    [](const ::testing::TestParamInfo<Case>& param) {
      std::string name = std::string(param.param.version == TLS1_3_VERSION ? "Tls13_" : "Tls12_") +
                         ktlsCipherName(param.param.cipher);
      for (char& ch : name)
        if (ch == '-') ch = '_';
      return name;
    });

TEST(KtlsKeysTest, AKeyUpdateMakesTheCapturedSecretsUnusable) {
  pki::Ca ca = pki::makeCa("ktls CA");
  pki::Leaf leaf = pki::makeLeaf(ca, pki::spec("server.test", {"server.test"}));
  SslCtxPtr server_ctx(SSL_CTX_new(TLS_server_method()));
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  ASSERT_EQ(SSL_CTX_use_certificate(server_ctx.get(), leaf.cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), leaf.key.get()), 1);
  captureKtlsSecrets(server_ctx.get());
  SslPtr server(SSL_new(server_ctx.get()));
  SslPtr client(SSL_new(client_ctx.get()));
  KtlsTrack track;
  ASSERT_TRUE(trackKtls(server.get(), &track));
  ASSERT_TRUE(pki::handshake(client.get(), server.get()).ok);
  ASSERT_EQ(SSL_key_update(server.get(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  char byte = 'x';
  ASSERT_EQ(SSL_write(server.get(), &byte, 1), 1);  // sends the KeyUpdate first
  KtlsKeys out;
  EXPECT_EQ(extractKtlsKeys(server.get(), track, true, out), "ktls: a KeyUpdate changed the traffic keys");
}

TEST(KtlsKeysTest, UntrackedConnectionsHaveNoSecrets) {
  pki::Ca ca = pki::makeCa("ktls CA");
  pki::Leaf leaf = pki::makeLeaf(ca, pki::spec("server.test", {"server.test"}));
  SslCtxPtr server_ctx(SSL_CTX_new(TLS_server_method()));
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  ASSERT_EQ(SSL_CTX_use_certificate(server_ctx.get(), leaf.cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), leaf.key.get()), 1);
  SslPtr server(SSL_new(server_ctx.get()));
  SslPtr client(SSL_new(client_ctx.get()));
  KtlsTrack track;  // tracked, but the context does not capture secrets
  ASSERT_TRUE(trackKtls(server.get(), &track));
  ASSERT_TRUE(pki::handshake(client.get(), server.get()).ok);
  KtlsKeys out;
  EXPECT_EQ(extractKtlsKeys(server.get(), track, true, out), "ktls: TLS 1.3 traffic secrets were not captured");
}

}  // namespace
}  // namespace ringlb::tls
