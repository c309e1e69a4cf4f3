// CertificateStore loading/lookup and ServerContext certificate selection in real
// handshakes: SNI exact/wildcard/default, RSA vs ECDSA by the client's sigalgs, strict SNI,
// ALPN preference, session info.
#include "tls/certificate_store.h"

#include <gtest/gtest.h>

#include "tests/unit/tls/test_pki.h"
#include "tls/server_context.h"

namespace ringlb::tls {
namespace {

const pki::Ca& testCa() {
  static const pki::Ca ca = pki::makeCa("Store CA");
  return ca;
}

std::string leafCn(const Identity& identity) {
  X509_NAME* name = X509_get_subject_name(identity.certificates.front()->leaf.get());
  char buf[256] = {};
  X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof(buf));
  return buf;
}

class CertificateStoreTest : public ::testing::Test {
 protected:
  std::string leaf(const std::string& file, const std::string& cn, std::vector<std::string> dns,
                   pki::Alg alg = pki::Alg::EcP256) {
    return dir_.writeLeaf(file, pki::makeLeaf(testCa(), pki::spec(cn, std::move(dns)), alg),
                          &testCa());
  }
  pki::TempDir dir_;
};

TEST_F(CertificateStoreTest, SelectsExactThenWildcardThenDefault) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.example.test"}),
                         leaf("wild.pem", "wild", {"*.example.test"}),
                         leaf("b.pem", "b", {"b.example.test", "B2.Example.Test"})};
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr) << ::testing::PrintToString(loaded.errors);
  const CertificateStore& store = *loaded.store;
  EXPECT_EQ(leafCn(store.select("a.example.test")), "a");
  EXPECT_EQ(leafCn(store.select("B.EXAMPLE.test")), "b");  // case-insensitive
  EXPECT_EQ(leafCn(store.select("b2.example.test.")), "b");  // SAN lower-cased, trailing dot
  EXPECT_EQ(leafCn(store.select("c.example.test")), "wild");
  EXPECT_EQ(leafCn(store.select("other.test")), "a");  // default = first loaded
  EXPECT_EQ(leafCn(store.select("")), "a");
  EXPECT_EQ(store.findByName("other.test"), nullptr);

  config.default_certificate = config.certificates[2];
  auto with_default = CertificateStore::load(config);
  ASSERT_NE(with_default.store, nullptr);
  EXPECT_EQ(leafCn(with_default.store->select("other.test")), "b");

  config.default_certificate = dir_.path() + "/nope.pem";
  auto bad_default = CertificateStore::load(config);
  EXPECT_EQ(bad_default.store, nullptr);
  ASSERT_EQ(bad_default.errors.size(), 1u);
  EXPECT_EQ(bad_default.errors[0],
            "default_certificate \"" + dir_.path() + "/nope.pem\": not among the loaded certificates");
}

TEST_F(CertificateStoreTest, WildcardMatchesExactlyOneLabel) {
  ServerTlsConfig config;
  config.certificates = {leaf("wild.pem", "wild", {"*.example.test"})};
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr);
  EXPECT_NE(loaded.store->findByName("x.example.test"), nullptr);
  EXPECT_EQ(loaded.store->findByName("a.b.example.test"), nullptr);
  EXPECT_EQ(loaded.store->findByName("example.test"), nullptr);
  EXPECT_EQ(loaded.store->findByName(".example.test"), nullptr);
}

TEST_F(CertificateStoreTest, CnIsUsedOnlyWithoutDnsSan) {
  ServerTlsConfig config;
  config.certificates = {leaf("san.pem", "cn-not-served.test", {"san.test"}),
                         leaf("cn.pem", "CN-Only.Test", {})};
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr);
  EXPECT_EQ(loaded.store->findByName("cn-not-served.test"), nullptr);
  ASSERT_NE(loaded.store->findByName("cn-only.test"), nullptr);
}

TEST_F(CertificateStoreTest, RsaAndEcdsaForOneNameFormOneIdentity) {
  ServerTlsConfig config;
  config.certificates = {leaf("rsa.pem", "dual", {"dual.test"}, pki::Alg::Rsa2048),
                         leaf("ec.pem", "dual", {"dual.test"})};
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr);
  EXPECT_EQ(loaded.store->identities().size(), 1u);
  const Identity* identity = loaded.store->findByName("dual.test");
  ASSERT_NE(identity, nullptr);
  ASSERT_EQ(identity->certificates.size(), 2u);
  EXPECT_EQ(identity->certificates[0]->key_type, KeyType::Rsa);
  EXPECT_EQ(identity->certificates[1]->key_type, KeyType::Ecdsa);
}

TEST_F(CertificateStoreTest, LoadErrorsAreCollectedAndPrecise) {
  const pki::Leaf one = pki::makeLeaf(testCa(), pki::spec("one", {"one.test"}));
  const pki::Leaf two = pki::makeLeaf(testCa(), pki::spec("two", {"two.test"}));
  const std::string mismatched =
      dir_.write("mismatch.pem", pki::certPem(one.cert.get()) + pki::keyPem(two.key.get()));
  const std::string key_only = dir_.write("keyonly.pem", pki::keyPem(one.key.get()));
  const std::string no_key = dir_.writeLeaf("nokey.pem", one, nullptr, false);
  ServerTlsConfig config;
  config.certificates = {dir_.path() + "/missing.pem", mismatched, key_only, no_key};
  auto loaded = CertificateStore::load(config);
  EXPECT_EQ(loaded.store, nullptr);
  ASSERT_EQ(loaded.errors.size(), 4u) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.errors[0], dir_.path() + "/missing.pem: cannot read: No such file or directory");
  EXPECT_EQ(loaded.errors[1], mismatched + ": private key does not match certificate");
  EXPECT_EQ(loaded.errors[2], key_only + ": no certificate");
  EXPECT_EQ(loaded.errors[3], no_key + ": no private key (and no " + no_key + ".key)");
}

TEST_F(CertificateStoreTest, KeyFromSiblingDotKeyFileAndPermissionWarning) {
  const pki::Leaf leaf_key = pki::makeLeaf(testCa(), pki::spec("split", {"split.test"}));
  const std::string cert = dir_.writeLeaf("split.pem", leaf_key, &testCa(), false, 0644);
  const std::string key = dir_.write("split.pem.key", pki::keyPem(leaf_key.key.get()), 0640);
  ServerTlsConfig config;
  config.certificates = {cert};
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr) << ::testing::PrintToString(loaded.errors);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_EQ(loaded.warnings[0], key + ": private key is readable by group/others (mode 0640); chmod 600 it");
  // The certificate file itself (0644, no key in it) is not warned about.
}

TEST_F(CertificateStoreTest, CertificateDirIsSortedAndSkipsKeyOnlyFiles) {
  ServerTlsConfig config;
  config.certificate_dir = dir_.path();
  leaf("20-b.crt", "b", {"b.test"});
  leaf("10-a.pem", "a", {"a.test"});
  dir_.write("15-key.pem", pki::keyPem(pki::makeKey(pki::Alg::EcP256).get()));
  dir_.write("notes.txt", "not a certificate");
  auto loaded = CertificateStore::load(config);
  ASSERT_NE(loaded.store, nullptr) << ::testing::PrintToString(loaded.errors);
  ASSERT_EQ(loaded.store->certificates().size(), 2u);
  EXPECT_EQ(loaded.store->certificates()[0]->path, dir_.path() + "/10-a.pem");
  EXPECT_EQ(leafCn(loaded.store->defaultIdentity()), "a");
}

// ---- selection in real handshakes ----

struct Handshake {
  pki::HandshakeResult result;
  std::string server_cn;     // CN of the certificate the client got
  int server_key_type = 0;   // EVP_PKEY_RSA / EVP_PKEY_EC
  SessionInfo info;          // server side
  SslPtr server;             // kept alive for `info`'s views
};

Handshake connect(const ServerContext& ctx, const std::string& sni, const char* sigalgs = nullptr,
                  std::vector<std::string> alpn = {}) {
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  if (sigalgs != nullptr) {
    pki::check(SSL_CTX_set1_sigalgs_list(client_ctx.get(), sigalgs) == 1, "sigalgs");
  }
  SslPtr client(SSL_new(client_ctx.get()));
  if (!sni.empty()) SSL_set_tlsext_host_name(client.get(), sni.c_str());
  if (!alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const auto& p : alpn) {
      wire.push_back(static_cast<unsigned char>(p.size()));
      wire.insert(wire.end(), p.begin(), p.end());
    }
    SSL_set_alpn_protos(client.get(), wire.data(), static_cast<unsigned>(wire.size()));
  }
  Handshake h;
  h.server = ctx.newSsl();
  h.result = pki::handshake(client.get(), h.server.get());
  if (h.result.ok) {
    X509* peer = SSL_get0_peer_certificate(client.get());
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
    h.server_cn = buf;
    h.server_key_type = EVP_PKEY_get_base_id(X509_get0_pubkey(peer));
    h.info = sessionInfo(h.server.get());
  }
  return h;
}

class ServerContextTest : public CertificateStoreTest {
 protected:
  std::unique_ptr<ServerContext> make(const ServerTlsConfig& config) {
    auto loaded = CertificateStore::load(config);
    EXPECT_NE(loaded.store, nullptr) << ::testing::PrintToString(loaded.errors);
    std::string error;
    auto ctx = ServerContext::create(config, loaded.store, TicketKeys::random(), &error);
    EXPECT_NE(ctx, nullptr) << error;
    return ctx;
  }
};

TEST_F(ServerContextTest, SniSelectsTheIdentityDuringTheHandshake) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.example.test"}),
                         leaf("wild.pem", "wild", {"*.example.test"})};
  auto ctx = make(config);
  EXPECT_EQ(connect(*ctx, "a.example.test").server_cn, "a");
  EXPECT_EQ(connect(*ctx, "zz.example.test").server_cn, "wild");
  EXPECT_EQ(connect(*ctx, "deep.zz.example.test").server_cn, "a");  // default
  EXPECT_EQ(connect(*ctx, "").server_cn, "a");
}

TEST_F(ServerContextTest, ClientSigalgsPickRsaOrEcdsaCertificate) {
  ServerTlsConfig config;
  config.certificates = {leaf("ec.pem", "dual-ec", {"dual.test"}),
                         leaf("rsa.pem", "dual-rsa", {"dual.test"}, pki::Alg::Rsa2048)};
  auto ctx = make(config);
  const Handshake rsa = connect(*ctx, "dual.test", "RSA-PSS+SHA256:RSA+SHA256");
  ASSERT_TRUE(rsa.result.ok) << rsa.result.server_error;
  EXPECT_EQ(rsa.server_key_type, EVP_PKEY_RSA);
  EXPECT_EQ(rsa.server_cn, "dual-rsa");
  EXPECT_EQ(rsa.info.key_alg, "RSA");
  EXPECT_EQ(rsa.info.key_bits, 2048);
  const Handshake ec = connect(*ctx, "dual.test", "ECDSA+SHA256");
  ASSERT_TRUE(ec.result.ok) << ec.result.server_error;
  EXPECT_EQ(ec.server_key_type, EVP_PKEY_EC);
  EXPECT_EQ(ec.server_cn, "dual-ec");
  EXPECT_EQ(ec.info.key_alg, "ECDSA");
  EXPECT_EQ(ec.info.sig_hash, "SHA256");
}

TEST_F(ServerContextTest, StrictSniRefusesUnknownOrMissingNameWithUnrecognizedName) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.example.test"})};
  config.strict_sni = true;
  auto ctx = make(config);
  EXPECT_TRUE(connect(*ctx, "a.example.test").result.ok);
  for (const std::string sni : {"b.example.test", ""}) {
    const Handshake h = connect(*ctx, sni);
    EXPECT_FALSE(h.result.ok) << sni;
    EXPECT_EQ(h.result.client_alert, SSL_AD_UNRECOGNIZED_NAME) << sni;
  }
  config.strict_sni = false;
  auto lax = make(config);
  EXPECT_TRUE(connect(*lax, "b.example.test").result.ok);
}

TEST_F(ServerContextTest, AlpnFollowsServerPreferenceAndOmitsOnNoOverlap) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.test"})};
  config.alpn = {"h2", "http/1.1"};
  auto ctx = make(config);
  const Handshake both = connect(*ctx, "a.test", nullptr, {"http/1.1", "h2"});
  ASSERT_TRUE(both.result.ok);
  EXPECT_EQ(both.info.alpn, "h2");
  const Handshake none = connect(*ctx, "a.test", nullptr, {"spdy/3"});
  ASSERT_TRUE(none.result.ok) << none.result.server_error;
  EXPECT_EQ(none.info.alpn, "");
}

TEST_F(ServerContextTest, SessionInfoDescribesTheConnection) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.test"})};
  auto ctx = make(config);
  const Handshake h = connect(*ctx, "a.test");
  ASSERT_TRUE(h.result.ok);
  EXPECT_EQ(h.info.version, "TLSv1.3");
  EXPECT_EQ(h.info.cipher.substr(0, 4), "TLS_");
  EXPECT_EQ(h.info.sni, "a.test");
  EXPECT_FALSE(h.info.resumed);
  EXPECT_FALSE(h.info.client_cert_presented);
  EXPECT_EQ(h.info.key_alg, "ECDSA");
}

TEST_F(ServerContextTest, TicketsRequireKeys) {
  ServerTlsConfig config;
  config.certificates = {leaf("a.pem", "a", {"a.test"})};
  auto loaded = CertificateStore::load(config);
  std::string error;
  EXPECT_EQ(ServerContext::create(config, loaded.store, nullptr, &error), nullptr);
  EXPECT_EQ(error, "session_tickets is on but no ticket keys were given");
  config.session_tickets = false;
  EXPECT_NE(ServerContext::create(config, loaded.store, nullptr, &error), nullptr);
}

}  // namespace
}  // namespace ringlb::tls
