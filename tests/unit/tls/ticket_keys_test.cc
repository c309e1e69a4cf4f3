// TicketKeys: HAProxy-format key files, precise load errors, and resumption across contexts
// (other workers / instances), across a rotation, and not across different keys.
#include "tls/ticket_keys.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include "tests/unit/tls/test_pki.h"
#include "tls/certificate_store.h"
#include "tls/server_context.h"
#include "tls/session_cache.h"

namespace ringlb::tls {
namespace {

std::string base64(const std::vector<uint8_t>& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::vector<uint8_t> randomBytes(size_t n) {
  std::vector<uint8_t> raw(n);
  pki::check(RAND_bytes(raw.data(), static_cast<int>(n)) == 1, "RAND_bytes");
  return raw;
}

TEST(TicketKeysTest, LoadErrorsNameFileAndLine) {
  pki::TempDir dir;
  std::string error;
  EXPECT_EQ(TicketKeys::load(dir.path() + "/missing", &error), nullptr);
  EXPECT_EQ(error, dir.path() + "/missing: cannot read: No such file or directory");

  const std::string good = base64(randomBytes(80));
  const std::string bad_b64 = dir.write("b64", "# keys\n" + good + "\n\nnot*base64==\n");
  EXPECT_EQ(TicketKeys::load(bad_b64, &error), nullptr);
  EXPECT_EQ(error, bad_b64 + ":4: not valid base64");

  const std::string short_key = dir.write("short", good + "\n" + base64(randomBytes(32)) + "\n");
  EXPECT_EQ(TicketKeys::load(short_key, &error), nullptr);
  EXPECT_EQ(error, short_key + ":2: key is 32 bytes, expected 80 (or 48)");

  const std::string empty = dir.write("empty", "# only a comment\n\n   \n");
  EXPECT_EQ(TicketKeys::load(empty, &error), nullptr);
  EXPECT_EQ(error, empty + ": no keys");
}

TEST(TicketKeysTest, ReadsHaproxyLayoutFor80And48ByteKeys) {
  const std::vector<uint8_t> k80 = randomBytes(80);
  const std::vector<uint8_t> k48 = randomBytes(48);
  std::string error;
  auto keys = TicketKeys::parse("# comment\n" + base64(k48) + "\r\n  " + base64(k80) + "  \n",
                                "mem", &error);
  ASSERT_NE(keys, nullptr) << error;
  ASSERT_EQ(keys->keys().size(), 2u);
  // HAProxy struct tls_sess_key_{128,256}: name[16] | aes_key | hmac_key.
  const TicketKeys::Key& newest = keys->encryptionKey();
  EXPECT_EQ(newest.aes_bytes, 32);
  EXPECT_TRUE(std::equal(newest.name.begin(), newest.name.end(), k80.begin()));
  EXPECT_TRUE(std::equal(newest.aes.begin(), newest.aes.end(), k80.begin() + 16));
  EXPECT_TRUE(std::equal(newest.hmac.begin(), newest.hmac.end(), k80.begin() + 48));
  const TicketKeys::Key& oldest = keys->keys().front();
  EXPECT_EQ(oldest.aes_bytes, 16);
  EXPECT_TRUE(std::equal(oldest.aes.begin(), oldest.aes.begin() + 16, k48.begin() + 16));
  EXPECT_TRUE(std::equal(oldest.hmac.begin(), oldest.hmac.begin() + 16, k48.begin() + 32));
}

// A server certificate store shared by every context of these tests.
std::shared_ptr<const CertificateStore> serverStore(pki::TempDir& dir, ServerTlsConfig* config) {
  static const pki::Ca ca = pki::makeCa("Ticket CA");
  static const pki::Leaf leaf = pki::makeLeaf(ca, pki::spec("tickets.test", {"tickets.test"}));
  config->certificates = {dir.writeLeaf("tickets.pem", leaf, &ca)};
  config->session_cache_size = 0;  // resumption below can only come from tickets
  auto loaded = CertificateStore::load(*config);
  pki::check(loaded.store != nullptr, "certificate store");
  return loaded.store;
}

struct Connection {
  pki::HandshakeResult result;
  bool resumed = false;
  SslSessionPtr session;  // the client's session after the handshake (and tickets)
};

Connection connect(const ServerContext& server_ctx, int version, SSL_SESSION* resume) {
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(client_ctx.get(), version);
  SSL_CTX_set_max_proto_version(client_ctx.get(), version);
  SslPtr client(SSL_new(client_ctx.get()));
  SSL_set_tlsext_host_name(client.get(), "tickets.test");
  if (resume != nullptr) pki::check(SSL_set_session(client.get(), resume) == 1, "set_session");
  SslPtr server = server_ctx.newSsl();
  Connection c;
  c.result = pki::handshake(client.get(), server.get());
  if (!c.result.ok) return c;
  if (version == TLS1_3_VERSION) pki::readPostHandshake(client.get());
  c.resumed = SSL_session_reused(client.get()) == 1;
  c.session.reset(SSL_get1_session(client.get()));
  pki::closeCleanly(client.get(), server.get());
  return c;
}

// The key name a ticket was issued under (RFC 5077 s4: key_name is its first 16 bytes).
std::vector<uint8_t> ticketKeyName(SSL_SESSION* session) {
  const unsigned char* ticket = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &len);
  if (len < 16) return {};
  return {ticket, ticket + 16};
}

class TicketResumptionTest : public ::testing::TestWithParam<int> {};

TEST_P(TicketResumptionTest, TicketFromOneContextResumesOnAnotherLoadedFromTheSameFile) {
  pki::TempDir dir;
  ServerTlsConfig config;
  auto store = serverStore(dir, &config);
  const std::string file = dir.write("keys", base64(randomBytes(80)) + "\n");
  std::string error;
  // Two loads of the same file: two workers, or two ringlb instances.
  auto worker1 = ServerContext::create(config, store, TicketKeys::load(file, &error), &error);
  auto worker2 = ServerContext::create(config, store, TicketKeys::load(file, &error), &error);
  ASSERT_TRUE(worker1 && worker2) << error;
  Connection first = connect(*worker1, GetParam(), nullptr);
  ASSERT_TRUE(first.result.ok) << first.result.server_error;
  ASSERT_FALSE(first.resumed);
  Connection second = connect(*worker2, GetParam(), first.session.get());
  ASSERT_TRUE(second.result.ok) << second.result.server_error;
  EXPECT_TRUE(second.resumed);
}

// Session IDs (tickets off): each worker has its own SSL_CTX; the listener's shared cache
// (tls/session_cache.h) lets a session made on one resume on another, and only then.
TEST_P(TicketResumptionTest, SessionIdsResumeAcrossContextsSharingACacheOnly) {
  pki::TempDir dir;
  ServerTlsConfig config;
  config.session_tickets = false;
  auto store = serverStore(dir, &config);
  config.session_cache_size = 100;
  std::string error;
  auto shared = std::make_shared<SharedSessionCache>(100);
  auto worker1 = ServerContext::create(config, store, nullptr, &error, shared);
  auto worker2 = ServerContext::create(config, store, nullptr, &error, shared);
  auto alone = ServerContext::create(config, store, nullptr, &error);
  ASSERT_TRUE(worker1 && worker2 && alone) << error;
  Connection first = connect(*worker1, GetParam(), nullptr);
  ASSERT_TRUE(first.result.ok) << first.result.server_error;
  ASSERT_FALSE(first.resumed);
  EXPECT_GE(shared->size(), 1u);
  Connection second = connect(*worker2, GetParam(), first.session.get());
  ASSERT_TRUE(second.result.ok) << second.result.server_error;
  EXPECT_TRUE(second.resumed);
  Connection elsewhere = connect(*alone, GetParam(), first.session.get());
  ASSERT_TRUE(elsewhere.result.ok) << elsewhere.result.server_error;
  EXPECT_FALSE(elsewhere.resumed);
}

TEST(SharedSessionCacheTest, IsBoundedByItsCapacity) {
  pki::TempDir dir;
  ServerTlsConfig config;
  config.session_tickets = false;
  auto store = serverStore(dir, &config);
  config.session_cache_size = 16;
  std::string error;
  auto shared = std::make_shared<SharedSessionCache>(16);  // one per shard
  auto server = ServerContext::create(config, store, nullptr, &error, shared);
  ASSERT_TRUE(server) << error;
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(connect(*server, TLS1_2_VERSION, nullptr).result.ok);
  EXPECT_LE(shared->size(), 16u);
  EXPECT_GE(shared->size(), 1u);
}

TEST_P(TicketResumptionTest, DifferentKeysDoNotResume) {
  pki::TempDir dir;
  ServerTlsConfig config;
  auto store = serverStore(dir, &config);
  std::string error;
  auto a = ServerContext::create(config, store, TicketKeys::random(), &error);
  auto b = ServerContext::create(config, store, TicketKeys::random(), &error);
  ASSERT_TRUE(a && b) << error;
  Connection first = connect(*a, GetParam(), nullptr);
  ASSERT_TRUE(first.result.ok) << first.result.server_error;
  Connection second = connect(*b, GetParam(), first.session.get());
  ASSERT_TRUE(second.result.ok) << second.result.server_error;
  EXPECT_FALSE(second.resumed);
  // Control: the same keys do resume, so the refusal above is the keys' doing.
  Connection again = connect(*a, GetParam(), first.session.get());
  EXPECT_TRUE(again.resumed);
}

TEST_P(TicketResumptionTest, AfterRotationOldTicketResumesAndIsRenewedUnderNewestKey) {
  pki::TempDir dir;
  ServerTlsConfig config;
  auto store = serverStore(dir, &config);
  const std::vector<uint8_t> old_key = randomBytes(80);
  const std::vector<uint8_t> new_key = randomBytes(80);
  const std::string file = dir.write("keys", base64(old_key) + "\n");
  std::string error;
  auto before = ServerContext::create(config, store, TicketKeys::load(file, &error), &error);
  ASSERT_TRUE(before) << error;
  Connection first = connect(*before, GetParam(), nullptr);
  ASSERT_TRUE(first.result.ok) << first.result.server_error;
  EXPECT_EQ(ticketKeyName(first.session.get()),
            std::vector<uint8_t>(old_key.begin(), old_key.begin() + 16));

  // Rotation: append the new key (the last one encrypts), reload.
  dir.write("keys", base64(old_key) + "\n" + base64(new_key) + "\n");
  auto after = ServerContext::create(config, store, TicketKeys::load(file, &error), &error);
  ASSERT_TRUE(after) << error;
  Connection resumed = connect(*after, GetParam(), first.session.get());
  ASSERT_TRUE(resumed.result.ok) << resumed.result.server_error;
  EXPECT_TRUE(resumed.resumed);
  // Renewed: the client now holds a ticket under the newest key. (In TLS 1.2 a resumed
  // handshake carries a NewSessionTicket only when the callback asked for renewal.)
  EXPECT_EQ(ticketKeyName(resumed.session.get()),
            std::vector<uint8_t>(new_key.begin(), new_key.begin() + 16));

  // A ticket under the newest key: TLS 1.3 renews it (clients use each ticket once; without a
  // fresh one their next visit is a full handshake); TLS 1.2 keeps it (clients reuse it, and
  // a renewal would make OpenSSL clients drop the session they hold, see ticket_keys.cc).
  {
    Connection fresh = connect(*after, GetParam(), resumed.session.get());
    ASSERT_TRUE(fresh.resumed);
    EXPECT_EQ(ticketKeyName(fresh.session.get()), std::vector<uint8_t>(new_key.begin(), new_key.begin() + 16));
    const unsigned char* t1 = nullptr;
    const unsigned char* t2 = nullptr;
    size_t l1 = 0;
    size_t l2 = 0;
    SSL_SESSION_get0_ticket(resumed.session.get(), &t1, &l1);
    SSL_SESSION_get0_ticket(fresh.session.get(), &t2, &l2);
    if (GetParam() == TLS1_3_VERSION) {
      EXPECT_NE(std::string(reinterpret_cast<const char*>(t1), l1),
                std::string(reinterpret_cast<const char*>(t2), l2));
    } else {
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(t1), l1),
                std::string(reinterpret_cast<const char*>(t2), l2));
    }
    // ... and the renewed ticket resumes in its turn (a chain of visits).
    Connection again = connect(*after, GetParam(), fresh.session.get());
    EXPECT_TRUE(again.resumed);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, TicketResumptionTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const auto& param_info) {
                           return param_info.param == TLS1_3_VERSION ? std::string("Tls13")
                                                               : std::string("Tls12");
                         });

}  // namespace
}  // namespace ringlb::tls
