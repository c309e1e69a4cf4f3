// [crypto] applied to OpenSSL: providers by name and path, the property query (and that the
// SSL_CTXs ringlb creates follow it), engines (afalg without AF_ALG), and the report.
#include "tls/crypto_setup.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/tls/test_pki.h"
#include "tls/client_context.h"

namespace ringlb::tls {
namespace {

::testing::AssertionResult contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

bool hasLine(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

CryptoConfig withProviders(std::vector<std::string> providers, std::string query = "") {
  CryptoConfig config;
  config.providers = std::move(providers);
  config.property_query = std::move(query);
  return config;
}

bool defaultContextServesAesGcm() {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  EVP_CIPHER_free(cipher);
  return cipher != nullptr;
}

TEST(CryptoSetupTest, DefaultConfigReportsTheDefaultProviderForEveryAlgorithm) {
  std::string error;
  std::vector<std::string> report;
  ASSERT_TRUE(applyCryptoConfig(CryptoConfig{}, &error, &report)) << error;
  for (const char* line : {"AES-128-GCM: provider default", "AES-256-GCM: provider default",
                           "ChaCha20-Poly1305: provider default", "ECDSA (P-256 signing): provider default",
                           "RSA (2048 signing): provider default", "X25519: provider default",
                           "TLS hashes and KDFs (SHA-256, SHA-384, HKDF, TLS1-PRF): provider default"}) {
    EXPECT_TRUE(hasLine(report, line)) << line << "\n" << joined(report);
  }
}

TEST(CryptoSetupTest, ReportFormat) {
  std::string error;
  std::vector<std::string> report;
  ASSERT_TRUE(applyCryptoConfig(CryptoConfig{}, &error, &report)) << error;
  // providers, property query, engine, six algorithms, the TLS support line, five CPU lines.
  ASSERT_EQ(report.size(), 3u + 6u + 1u + 5u) << joined(report);
  EXPECT_EQ(report[0], "providers: default");
  EXPECT_EQ(report[1], "property query: none");
  EXPECT_EQ(report[2], "engine: none");
  EXPECT_TRUE(report[3].starts_with("AES-128-GCM: "));
  EXPECT_TRUE(report[8].starts_with("X25519: "));
  EXPECT_TRUE(report[9].starts_with("TLS hashes and KDFs "));
  const char* cpu[] = {"AES-NI: ", "VAES: ", "AVX-512: ", "PCLMULQDQ: ", "SHA-NI: "};
  for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(report[10 + i].starts_with(cpu[i])) << report[10 + i];
}

TEST(CryptoSetupTest, LegacyLoadsNextToDefault) {
  std::string error;
  std::vector<std::string> report;
  ASSERT_TRUE(applyCryptoConfig(withProviders({"default", "legacy"}), &error, &report)) << error;
  EXPECT_TRUE(contains(report[0], "legacy")) << joined(report);
  EXPECT_TRUE(contains(report[0], "default")) << joined(report);
  EXPECT_TRUE(hasLine(report, "AES-256-GCM: provider default")) << joined(report);
  // What legacy is for: an algorithm the default provider lacks.
  EVP_CIPHER* bf = EVP_CIPHER_fetch(nullptr, "BF-CBC", nullptr);
  ASSERT_NE(bf, nullptr);
  EXPECT_STREQ(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(bf)), "legacy");
  EVP_CIPHER_free(bf);
}

TEST(CryptoSetupTest, ProviderListWithoutDefaultMustServeEverythingItself) {
  std::string error;
  EXPECT_FALSE(checkCryptoConfig(withProviders({"legacy"}), &error));
  EXPECT_TRUE(contains(error, "AES-128-GCM: no implementation in the loaded providers (legacy); OpenSSL: "));
}

TEST(CryptoSetupTest, ProviderLoadsByPath) {
  std::string path = providerModulesDir() + "/legacy.so";
  if (::access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "no legacy provider module at " << path;
  std::string error;
  EXPECT_TRUE(checkCryptoConfig(withProviders({"default", path}), &error)) << error;
}

TEST(CryptoSetupTest, BogusProviderFailsNamingIt) {
  std::string error;
  std::vector<std::string> report;
  EXPECT_FALSE(applyCryptoConfig(withProviders({"default", "no-such-provider"}), &error, &report));
  EXPECT_TRUE(contains(error, "cannot load OpenSSL provider \"no-such-provider\": "));
  EXPECT_TRUE(contains(error, "no-such-provider.so"));  // OpenSSL's reason names the module file
  EXPECT_TRUE(report.empty());
}

TEST(CryptoSetupTest, PropertyQueryMatchingNothingNamesTheAlgorithmAndTheQuery) {
  std::string error;
  std::vector<std::string> report;
  EXPECT_FALSE(applyCryptoConfig(withProviders({}, "provider=nonexistent"), &error, &report));
  EXPECT_TRUE(contains(error, "AES-128-GCM: no implementation in the loaded providers (default) matches "
                              "property_query \"provider=nonexistent\"; OpenSSL: "));
  EXPECT_TRUE(contains(error, "unsupported"));
  // The check ran in a private context: the default one (every SSL_CTX's) is untouched.
  EXPECT_TRUE(defaultContextServesAesGcm());
}

TEST(CryptoSetupTest, OptionalPropertyQueryFallsBack) {
  std::string error;
  EXPECT_TRUE(checkCryptoConfig(withProviders({}, "?provider=nonexistent"), &error)) << error;
  EXPECT_TRUE(checkCryptoConfig(withProviders({"default", "legacy"}, "provider=default"), &error)) << error;
}

TEST(CryptoSetupTest, PropertyQuerySyntaxErrorIsReported) {
  std::string error;
  EXPECT_FALSE(checkCryptoConfig(withProviders({}, "provider=default,,"), &error));
  EXPECT_TRUE(contains(error, "property_query \"provider=default,,\" is not a valid OpenSSL property query: "));
}

TEST(CryptoSetupTest, AfalgWithoutKernelSupportSaysAfAlgIsUnavailable) {
  int fd = ::socket(AF_ALG, SOCK_SEQPACKET, 0);
  if (fd >= 0) {
    ::close(fd);
    GTEST_SKIP() << "this kernel has AF_ALG sockets";
  }
  CryptoConfig config;
  config.engine = "afalg";
  std::string error;
  std::vector<std::string> report;
  EXPECT_FALSE(applyCryptoConfig(config, &error, &report));
  EXPECT_TRUE(contains(error, "OpenSSL engine \"afalg\": the kernel's AF_ALG interface is not available "
                              "(socket(AF_ALG, SOCK_SEQPACKET, 0): Address family not supported by protocol"));
  EXPECT_TRUE(contains(error, "; OpenSSL: "));
  EXPECT_TRUE(defaultContextServesAesGcm());
}

TEST(CryptoSetupTest, UnknownEngineFailsNamingIt) {
  CryptoConfig config;
  config.engine = "no-such-engine";
  std::string error;
  EXPECT_FALSE(checkCryptoConfig(config, &error));
  EXPECT_TRUE(contains(error, "cannot load OpenSSL engine \"no-such-engine\"; OpenSSL: "));
  EXPECT_TRUE(contains(error, "id=no-such-engine"));
}

TEST(CryptoSetupTest, EngineThatCannotInitialiseFailsNamingIt) {
  // padlock (VIA CPUs) loads on any x86 but refuses ENGINE_init without the hardware.
  CryptoConfig config;
  config.engine = "padlock";
  std::string error;
  if (checkCryptoConfig(config, &error)) GTEST_SKIP() << "padlock initialises here";
  if (error.starts_with("cannot load")) GTEST_SKIP() << "no padlock engine: " << error;
  EXPECT_TRUE(contains(error, "cannot initialise OpenSSL engine \"padlock\"; OpenSSL: "));
}

// A ClientContext (ringlb's backend-side SSL_CTX) handshakes with a plain OpenSSL backend;
// then the default property query becomes "provider=nonexistent" and a new ClientContext
// must fail to build or to handshake. Exit status 0 = it did; runs in a child process.
int clientContextAfterImpossibleQuery() {
  pki::TempDir dir;
  pki::Ca ca = pki::makeCa("crypto CA");
  pki::Leaf leaf = pki::makeLeaf(ca, pki::spec("backend.test", {"backend.test"}));
  SslCtxPtr backend(SSL_CTX_new(TLS_server_method()));
  pki::check(SSL_CTX_use_certificate(backend.get(), leaf.cert.get()) == 1, "use_certificate");
  pki::check(SSL_CTX_use_PrivateKey(backend.get(), leaf.key.get()) == 1, "use_PrivateKey");
  ClientTlsConfig config;
  config.enabled = true;
  config.ca_file = dir.write("ca.pem", pki::certPem(ca.cert.get()));
  auto creds = ClientCredentials::load(config, nullptr, nullptr);
  pki::check(creds != nullptr, "credentials");
  auto connect = [&](const char* label) {
    std::string error;
    auto ctx = ClientContext::create(config, creds, &error);
    if (!ctx) {
      std::fprintf(stderr, "%s: ClientContext::create failed: %s\n", label, error.c_str());
      return false;
    }
    SslPtr client = ctx->newSsl("backend.test", "backend.test", nullptr, "", &error);
    SslPtr server(SSL_new(backend.get()));
    if (!client || !server) return false;
    pki::HandshakeResult r = pki::handshake(client.get(), server.get());
    std::fprintf(stderr, "%s: handshake %s %s\n", label, r.ok ? "ok" : "failed", r.client_error.c_str());
    return r.ok;
  };
  if (!connect("control")) return 3;
  EVP_set_default_properties(nullptr, "provider=nonexistent");
  return connect("provider=nonexistent") ? 4 : 0;
}

// The SSL_CTXs ringlb makes (SSL_CTX_new: the default library context, no property query of
// their own) follow the default property query. Forked: it breaks the process's OpenSSL.
TEST(CryptoSetupDeathTest, SslContextsFollowTheDefaultPropertyQuery) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(clientContextAfterImpossibleQuery()), ::testing::ExitedWithCode(0),
              "provider=nonexistent: (ClientContext::create failed|handshake failed)");
}

}  // namespace
}  // namespace ringlb::tls
