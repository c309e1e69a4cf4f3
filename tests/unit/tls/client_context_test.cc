// ClientContext: backend verification against the internal CA with exact failure reasons,
// IP SANs, mTLS towards a ServerContext, and per-backend session reuse (TLS 1.2 and 1.3).
#include "tls/client_context.h"

#include <gtest/gtest.h>

#include "tests/unit/tls/test_pki.h"
#include "tls/certificate_store.h"
#include "tls/server_context.h"

namespace ringlb::tls {
namespace {

const pki::Ca& internalCa() {
  static const pki::Ca ca = pki::makeCa("Internal CA");
  return ca;
}

// A plain OpenSSL backend serving `leaf` (no ringlb code on this side).
SslCtxPtr backendCtx(const pki::Leaf& leaf, int max_version = TLS1_3_VERSION) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  pki::check(SSL_CTX_use_certificate(ctx.get(), leaf.cert.get()) == 1, "use_certificate");
  pki::check(SSL_CTX_use_PrivateKey(ctx.get(), leaf.key.get()) == 1, "use_PrivateKey");
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  const unsigned char sid_ctx[] = "backend";
  SSL_CTX_set_session_id_context(ctx.get(), sid_ctx, sizeof(sid_ctx));
  return ctx;
}

class ClientContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.enabled = true;
    config_.ca_file = dir_.write("ca.pem", pki::certPem(internalCa().cert.get()));
  }

  std::unique_ptr<ClientContext> make() {
    std::vector<std::string> errors;
    auto creds = ClientCredentials::load(config_, &errors, &warnings_);
    EXPECT_NE(creds, nullptr) << ::testing::PrintToString(errors);
    std::string error;
    auto ctx = ClientContext::create(config_, creds, &error);
    EXPECT_NE(ctx, nullptr) << error;
    return ctx;
  }

  struct Result {
    pki::HandshakeResult result;
    std::string failure;  // verifyFailure()
    bool resumed = false;
  };

  Result connect(const ClientContext& ctx, SSL_CTX* backend, const std::string& sni,
                 const std::string& verify_name, BackendSessionSlot* slot = nullptr) {
    std::string error;
    SslPtr client = ctx.newSsl(sni, verify_name, slot, "", &error);
    EXPECT_NE(client, nullptr) << error;
    SslPtr server(SSL_new(backend));
    Result r;
    r.result = pki::handshake(client.get(), server.get());
    r.failure = verifyFailure(client.get());
    if (r.result.ok) {
      r.resumed = SSL_session_reused(client.get()) == 1;
      if (SSL_version(client.get()) == TLS1_3_VERSION) pki::readPostHandshake(client.get());
      pki::closeCleanly(client.get(), server.get());
    }
    return r;
  }

  pki::TempDir dir_;
  ClientTlsConfig config_;
  std::vector<std::string> warnings_;
};

TEST_F(ClientContextTest, VerifiesBackendAgainstInternalCa) {
  const pki::Leaf leaf = pki::makeLeaf(internalCa(), pki::spec("backend-1.internal.test",
                                                               {"backend-1.internal.test"}));
  auto backend = backendCtx(leaf);
  auto ctx = make();
  const Result r = connect(*ctx, backend.get(), "backend-1.internal.test",
                           "backend-1.internal.test");
  EXPECT_TRUE(r.result.ok) << r.result.client_error;
  EXPECT_EQ(r.failure, "");
}

TEST_F(ClientContextTest, WrongNameIsRefusedWithExactReason) {
  const pki::Leaf leaf =
      pki::makeLeaf(internalCa(), pki::spec("wrong.internal.test", {"wrong.internal.test"}));
  auto backend = backendCtx(leaf);
  auto ctx = make();
  const Result r = connect(*ctx, backend.get(), "backend-1.internal.test",
                           "backend-1.internal.test");
  EXPECT_FALSE(r.result.ok);
  EXPECT_EQ(r.failure,
            "Hostname mismatch: certificate is for DNS:wrong.internal.test, expected "
            "backend-1.internal.test");
}

TEST_F(ClientContextTest, ExpiredCertificateIsRefusedWithExactReason) {
  pki::CertSpec spec = pki::spec("backend-2.internal.test", {"backend-2.internal.test"});
  spec.not_before_s = -10 * 86400;
  spec.not_after_s = -86400;
  auto backend = backendCtx(pki::makeLeaf(internalCa(), spec));
  auto ctx = make();
  const Result r = connect(*ctx, backend.get(), "backend-2.internal.test",
                           "backend-2.internal.test");
  EXPECT_FALSE(r.result.ok);
  EXPECT_EQ(r.failure,
            "certificate verify failed: certificate has expired (depth 0, subject "
            "CN=backend-2.internal.test)");
}

TEST_F(ClientContextTest, UntrustedIssuerIsRefusedWithExactReason) {
  const pki::Ca other = pki::makeCa("Other CA");
  auto backend = backendCtx(pki::makeLeaf(other, pki::spec("backend-3.internal.test",
                                                           {"backend-3.internal.test"})));
  auto ctx = make();
  const Result r = connect(*ctx, backend.get(), "backend-3.internal.test",
                           "backend-3.internal.test");
  EXPECT_FALSE(r.result.ok);
  EXPECT_EQ(r.failure,
            "certificate verify failed: unable to get local issuer certificate (depth 0, "
            "subject CN=backend-3.internal.test, issuer CN=Other CA)");
}

TEST_F(ClientContextTest, IpLiteralIsCheckedAgainstIpSans) {
  auto backend = backendCtx(
      pki::makeLeaf(internalCa(), pki::spec("10.0.0.7", {"ip-backend.internal.test"},
                                            {"10.0.0.7", "fd00::7"})));
  auto ctx = make();
  EXPECT_TRUE(connect(*ctx, backend.get(), "", "10.0.0.7").result.ok);
  EXPECT_TRUE(connect(*ctx, backend.get(), "", "fd00::7").result.ok);
  const Result wrong = connect(*ctx, backend.get(), "", "10.0.0.8");
  EXPECT_FALSE(wrong.result.ok);
  EXPECT_EQ(wrong.failure,
            "IP address mismatch: certificate is for DNS:ip-backend.internal.test, IP:10.0.0.7, "
            "IP:fd00::7, expected 10.0.0.8");
  // A CN that looks like the address does not count (RFC 6125 s6.2.1 / RFC 5280 iPAddress).
  auto cn_only = backendCtx(pki::makeLeaf(internalCa(), pki::spec("10.0.0.9")));
  EXPECT_FALSE(connect(*ctx, cn_only.get(), "", "10.0.0.9").result.ok);
}

TEST_F(ClientContextTest, VerifyNameFallbackIsExplicit) {
  EXPECT_EQ(ClientContext::verifyNameFor(config_, "sni.test", "10.1.1.1"), "sni.test");
  EXPECT_EQ(ClientContext::verifyNameFor(config_, "", "10.1.1.1"), "10.1.1.1");
  config_.verify_name = "fixed.test";
  EXPECT_EQ(ClientContext::verifyNameFor(config_, "sni.test", "10.1.1.1"), "fixed.test");
  auto ctx = make();
  std::string error;
  EXPECT_EQ(ctx->newSsl("sni.test", "", nullptr, "", &error), nullptr);
  EXPECT_EQ(ctx->newSsl("10.1.1.1", "10.1.1.1", nullptr, "", &error), nullptr);
  EXPECT_EQ(error, "sni \"10.1.1.1\": an IP address is not allowed in SNI (RFC 6066 s3)");
}

TEST_F(ClientContextTest, MutualTlsServerSeesClientSubject) {
  // Backend: ringlb's own ServerContext requiring a client certificate from the internal CA.
  const pki::Leaf server_leaf = pki::makeLeaf(internalCa(), pki::spec("mtls.internal.test",
                                                                      {"mtls.internal.test"}));
  ServerTlsConfig server_config;
  server_config.certificates = {dir_.writeLeaf("server.pem", server_leaf, &internalCa())};
  server_config.client_verify = ClientVerify::Required;
  server_config.client_ca_file = config_.ca_file;
  auto loaded = CertificateStore::load(server_config);
  ASSERT_NE(loaded.store, nullptr) << ::testing::PrintToString(loaded.errors);
  std::string error;
  auto server_ctx = ServerContext::create(server_config, loaded.store, TicketKeys::random(), &error);
  ASSERT_NE(server_ctx, nullptr) << error;

  // Without a client certificate: refused.
  auto anonymous = make();
  SslPtr c1 = anonymous->newSsl("mtls.internal.test", "mtls.internal.test", nullptr, "", &error);
  SslPtr s1 = server_ctx->newSsl();
  EXPECT_FALSE(pki::handshake(c1.get(), s1.get()).ok);

  const pki::Leaf client_leaf = pki::makeLeaf(internalCa(), pki::spec("ringlb-worker"));
  config_.client_certificate = dir_.writeLeaf("client.pem", client_leaf, nullptr, false);
  config_.client_key = dir_.write("client.key", pki::keyPem(client_leaf.key.get()), 0644);
  auto with_cert = make();
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("client.key: private key is readable by group/others (mode 0644)"),
            std::string::npos);
  SslPtr c2 = with_cert->newSsl("mtls.internal.test", "mtls.internal.test", nullptr, "", &error);
  SslPtr s2 = server_ctx->newSsl();
  const pki::HandshakeResult r = pki::handshake(c2.get(), s2.get());
  ASSERT_TRUE(r.ok) << r.client_error << " / " << r.server_error;
  const SessionInfo info = sessionInfo(s2.get());
  EXPECT_TRUE(info.client_cert_presented);
  EXPECT_TRUE(info.client_cert_verified);
  EXPECT_EQ(info.client_subject, "CN=ringlb-worker");
  EXPECT_EQ(info.client_cn, "ringlb-worker");
}

class ClientSessionReuseTest : public ClientContextTest,
                               public ::testing::WithParamInterface<int> {};

TEST_P(ClientSessionReuseTest, SecondConnectionWithTheSameSlotIsResumed) {
  const pki::Leaf leaf = pki::makeLeaf(internalCa(), pki::spec("backend-1.internal.test",
                                                               {"backend-1.internal.test"}));
  auto backend = backendCtx(leaf, GetParam());
  auto ctx = make();
  BackendSessionSlot slot;
  const Result first = connect(*ctx, backend.get(), "backend-1.internal.test",
                               "backend-1.internal.test", &slot);
  ASSERT_TRUE(first.result.ok) << first.result.client_error;
  EXPECT_FALSE(first.resumed);
  ASSERT_NE(slot.get(), nullptr);
  EXPECT_EQ(slot.verifiedName(), "backend-1.internal.test");
  const Result second = connect(*ctx, backend.get(), "backend-1.internal.test",
                                "backend-1.internal.test", &slot);
  ASSERT_TRUE(second.result.ok) << second.result.client_error;
  EXPECT_TRUE(second.resumed);

  // A different name must not reuse a session verified for another one.
  BackendSessionSlot* same_slot = &slot;
  const Result other_name = connect(*ctx, backend.get(), "backend-1.internal.test",
                                    "backend-9.internal.test", same_slot);
  EXPECT_FALSE(other_name.resumed);
  EXPECT_FALSE(other_name.result.ok);  // and verification ran (and failed)
  EXPECT_EQ(slot.get(), nullptr);      // the failed handshake cleared the slot
}

TEST_P(ClientSessionReuseTest, UnresumedOfferIsDroppedFromTheSlot) {
  const pki::Leaf leaf = pki::makeLeaf(internalCa(), pki::spec("backend-1.internal.test",
                                                               {"backend-1.internal.test"}));
  auto backend = backendCtx(leaf, GetParam());
  auto ctx = make();
  BackendSessionSlot slot;
  ASSERT_TRUE(connect(*ctx, backend.get(), "backend-1.internal.test", "backend-1.internal.test",
                      &slot).result.ok);
  SSL_SESSION* stale = slot.get();
  ASSERT_NE(stale, nullptr);
  // A restarted backend: new ticket keys and an empty cache, and it issues no new session.
  auto restarted = backendCtx(leaf, GetParam());
  SSL_CTX_set_options(restarted.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(restarted.get(), SSL_SESS_CACHE_OFF);
  if (GetParam() == TLS1_3_VERSION) SSL_CTX_set_num_tickets(restarted.get(), 0);
  const Result r = connect(*ctx, restarted.get(), "backend-1.internal.test",
                           "backend-1.internal.test", &slot);
  ASSERT_TRUE(r.result.ok) << r.result.client_error;
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(slot.get(), nullptr);
}

// OpenSSL updates the SSL_SESSION an SSL resumes from; one object shared by concurrent
// connections ended up non-resumable (bursts of full handshakes at 32 concurrent connections
// in the benchmark). Each connection must get its own copy.
TEST_P(ClientSessionReuseTest, ConcurrentConnectionsDoNotShareTheSlotSessionObject) {
  const pki::Leaf leaf = pki::makeLeaf(internalCa(), pki::spec("backend-1.internal.test",
                                                               {"backend-1.internal.test"}));
  auto backend = backendCtx(leaf, GetParam());
  auto ctx = make();
  BackendSessionSlot slot;
  ASSERT_TRUE(connect(*ctx, backend.get(), "backend-1.internal.test", "backend-1.internal.test",
                      &slot).result.ok);
  ASSERT_NE(slot.get(), nullptr);
  std::string error;
  SslPtr a = ctx->newSsl("backend-1.internal.test", "backend-1.internal.test", &slot, "", &error);
  SslPtr b = ctx->newSsl("backend-1.internal.test", "backend-1.internal.test", &slot, "", &error);
  ASSERT_TRUE(a && b) << error;
  ASSERT_NE(SSL_get_session(a.get()), nullptr);
  ASSERT_NE(SSL_get_session(b.get()), nullptr);
  EXPECT_NE(SSL_get_session(a.get()), slot.get());
  EXPECT_NE(SSL_get_session(b.get()), slot.get());
  EXPECT_NE(SSL_get_session(a.get()), SSL_get_session(b.get()));
}

INSTANTIATE_TEST_SUITE_P(Versions, ClientSessionReuseTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const auto& param_info) {
                           return param_info.param == TLS1_3_VERSION ? std::string("Tls13")
                                                                     : std::string("Tls12");
                         });

}  // namespace
}  // namespace ringlb::tls
