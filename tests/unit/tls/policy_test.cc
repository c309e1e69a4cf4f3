// applyPolicy / validatePolicy: presets decide what a real client can negotiate, overrides
// win over presets, and errors name the setting and value.
#include "tls/policy.h"

#include <gtest/gtest.h>

#include "tests/unit/tls/test_pki.h"

namespace ringlb::tls {
namespace {

struct Server {
  SslCtxPtr ctx;
};

// A server context with `policy` and an ECDSA + an RSA certificate (so RSA-only TLS 1.2
// ciphers are not refused merely for lack of an RSA key).
SslCtxPtr serverCtx(const TlsPolicy& policy) {
  static const pki::Ca ca = pki::makeCa("Policy CA");
  static const pki::Leaf ec = pki::makeLeaf(ca, pki::spec("policy.test", {"policy.test"}));
  static const pki::Leaf rsa =
      pki::makeLeaf(ca, pki::spec("policy.test", {"policy.test"}), pki::Alg::Rsa2048);
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  std::string error;
  EXPECT_TRUE(applyPolicy(ctx.get(), policy, true, &error)) << error;
  for (const pki::Leaf* leaf : {&ec, &rsa}) {
    pki::check(SSL_CTX_use_certificate(ctx.get(), leaf->cert.get()) == 1, "use_certificate");
    pki::check(SSL_CTX_use_PrivateKey(ctx.get(), leaf->key.get()) == 1, "use_PrivateKey");
  }
  return ctx;
}

// A client free of our policy: TLS 1.2..max_version, optional TLS 1.2 cipher list.
SslCtxPtr clientCtx(int max_version, const char* ciphers = nullptr) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (ciphers != nullptr) pki::check(SSL_CTX_set_cipher_list(ctx.get(), ciphers) == 1, "ciphers");
  return ctx;
}

struct Outcome {
  pki::HandshakeResult result;
  std::string version;
  std::string cipher;
};

Outcome connect(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  SslPtr server(SSL_new(server_ctx));
  SslPtr client(SSL_new(client_ctx));
  Outcome out;
  out.result = pki::handshake(client.get(), server.get());
  if (out.result.ok) {
    out.version = SSL_get_version(client.get());
    out.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(client.get()));
  }
  return out;
}

TEST(PolicyTest, ModernRefusesTls12OnlyClient) {
  TlsPolicy modern;
  modern.preset = TlsPreset::Modern;
  SslCtxPtr server = serverCtx(modern);
  EXPECT_FALSE(connect(server.get(), clientCtx(TLS1_2_VERSION).get()).result.ok);
  const Outcome ok = connect(server.get(), clientCtx(TLS1_3_VERSION).get());
  ASSERT_TRUE(ok.result.ok) << ok.result.server_error;
  EXPECT_EQ(ok.version, "TLSv1.3");
}

TEST(PolicyTest, IntermediateRefusesNonAeadTls12Cipher) {
  SslCtxPtr server = serverCtx(TlsPolicy{});
  const Outcome cbc = connect(server.get(), clientCtx(TLS1_2_VERSION, "AES128-SHA").get());
  EXPECT_FALSE(cbc.result.ok);
  const Outcome ecdhe_cbc =
      connect(server.get(), clientCtx(TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA").get());
  EXPECT_FALSE(ecdhe_cbc.result.ok);
  const Outcome gcm =
      connect(server.get(), clientCtx(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256").get());
  ASSERT_TRUE(gcm.result.ok) << gcm.result.server_error;
  EXPECT_EQ(gcm.version, "TLSv1.2");
  EXPECT_EQ(gcm.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
}

TEST(PolicyTest, ExplicitMinVersionOverridesModernPreset) {
  TlsPolicy policy;
  policy.preset = TlsPreset::Modern;
  policy.min_set = true;
  policy.min_version = TlsVersion::Tls12;
  SslCtxPtr server = serverCtx(policy);
  const Outcome out = connect(server.get(), clientCtx(TLS1_2_VERSION).get());
  ASSERT_TRUE(out.result.ok) << out.result.server_error;
  EXPECT_EQ(out.version, "TLSv1.2");
}

TEST(PolicyTest, ExplicitMaxVersionCapsIntermediateAtTls12) {
  TlsPolicy policy;
  policy.max_set = true;
  policy.max_version = TlsVersion::Tls12;
  SslCtxPtr server = serverCtx(policy);
  const Outcome out = connect(server.get(), clientCtx(TLS1_3_VERSION).get());
  ASSERT_TRUE(out.result.ok) << out.result.server_error;
  EXPECT_EQ(out.version, "TLSv1.2");
}

TEST(PolicyTest, CiphersuitesOverrideIsNegotiated) {
  TlsPolicy policy;
  policy.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
  SslCtxPtr server = serverCtx(policy);
  const Outcome out = connect(server.get(), clientCtx(TLS1_3_VERSION).get());
  ASSERT_TRUE(out.result.ok) << out.result.server_error;
  EXPECT_EQ(out.cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST(PolicyTest, RenegotiationAndCompressionAlwaysOff) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  std::string error;
  ASSERT_TRUE(applyPolicy(ctx.get(), TlsPolicy{}, false, &error)) << error;
  EXPECT_NE(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_2_VERSION);
}

TEST(PolicyTest, ErrorsNameTheSettingAndValue) {
  std::string error;
  TlsPolicy suites;
  suites.ciphersuites = "TLS_FOO";
  EXPECT_FALSE(validatePolicy(suites, &error));
  EXPECT_EQ(error, "ciphersuites \"TLS_FOO\": no TLS 1.3 ciphersuite recognised");

  TlsPolicy ciphers;
  ciphers.ciphers = "NOT-A-CIPHER";
  EXPECT_FALSE(validatePolicy(ciphers, &error));
  EXPECT_EQ(error.rfind("ciphers \"NOT-A-CIPHER\": no TLS 1.2 cipher recognised", 0), 0u) << error;

  TlsPolicy groups;
  groups.groups = "X25519:P-999";
  EXPECT_FALSE(validatePolicy(groups, &error));
  EXPECT_EQ(error.rfind("groups \"X25519:P-999\": unknown group", 0), 0u) << error;

  TlsPolicy sigalgs;
  sigalgs.signature_algorithms = "ECDSA+MD5000";
  EXPECT_FALSE(validatePolicy(sigalgs, &error));
  EXPECT_EQ(error.rfind("signature_algorithms \"ECDSA+MD5000\": unknown signature algorithm", 0),
            0u)
      << error;

  TlsPolicy inverted;
  inverted.min_set = inverted.max_set = true;
  inverted.min_version = TlsVersion::Tls13;
  inverted.max_version = TlsVersion::Tls12;
  EXPECT_FALSE(validatePolicy(inverted, &error));
  EXPECT_EQ(error, "min_version TLSv1.3 is above max_version TLSv1.2");

  EXPECT_TRUE(validatePolicy(TlsPolicy{}, &error)) << error;
}

}  // namespace
}  // namespace ringlb::tls
