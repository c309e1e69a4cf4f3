// [crypto]: providers, property query, engine and its algorithm classes, async, ktls.
#include <gtest/gtest.h>

#include <string>

#include "balancer/config.h"
#include "config_test_util.h"

namespace ringlb::balancer {
namespace {

using testing::contains;
using testing::joined;
using testing::parse;

// A minimal valid configuration with `crypto` as the [crypto] table's body (first line 2).
std::string withCrypto(std::string_view crypto) {
  std::string text = "[crypto]\n";
  text += crypto;
  text += R"(
[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"

[[pool]]
name = "api"
[[pool.backend]]
name = "a"
address = "10.0.0.1:443"
)";
  return text;
}

TEST(ConfigCryptoTest, NoCryptoTableMeansDefaultsEverywhere) {
  auto p = parse(withCrypto("").substr(9));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_EQ(p.config->crypto, tls::CryptoConfig{});
  EXPECT_TRUE(p.config->crypto.providers.empty());
  EXPECT_EQ(p.config->crypto.ktls, tls::KtlsMode::Auto);
  EXPECT_FALSE(p.config->crypto.async);
  EXPECT_TRUE(p.config->crypto_where.empty());
}

TEST(ConfigCryptoTest, EveryKeyIsRead) {
  auto p = parse(withCrypto(R"(providers = ["default", "legacy", "/opt/qat/qatprovider.so"]
property_query = "?provider=qatprovider"
engine = "qatengine"
engine_algorithms = ["RSA", "ec", "CIPHERS"]
async = true
ktls = "on"
)"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  const tls::CryptoConfig& c = p.config->crypto;
  EXPECT_EQ(c.providers, (std::vector<std::string>{"default", "legacy", "/opt/qat/qatprovider.so"}));
  EXPECT_EQ(c.property_query, "?provider=qatprovider");
  EXPECT_EQ(c.engine, "qatengine");
  EXPECT_EQ(c.engine_algorithms, (std::vector<std::string>{"RSA", "EC", "CIPHERS"}));
  EXPECT_TRUE(c.async);
  EXPECT_EQ(c.ktls, tls::KtlsMode::On);
  EXPECT_EQ(p.config->crypto_where, "t.toml:1:1");
}

TEST(ConfigCryptoTest, KtlsModes) {
  for (auto [text, mode] : {std::pair{"off", tls::KtlsMode::Off}, std::pair{"auto", tls::KtlsMode::Auto},
                            std::pair{"on", tls::KtlsMode::On}}) {
    auto p = parse(withCrypto(std::string("ktls = \"") + text + "\"\n"));
    ASSERT_TRUE(p.config) << joined(p.errors);
    EXPECT_EQ(p.config->crypto.ktls, mode) << text;
  }
}

TEST(ConfigCryptoTest, UnknownKtlsModeNamesTheChoices) {
  auto p = parse(withCrypto("ktls = \"yes\"\n"));
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.errors.size(), 1u) << joined(p.errors);
  EXPECT_TRUE(contains(p.errors[0], "t.toml:2:8: unknown ktls \"yes\" in [crypto]; expected one of: off, auto, on"));
}

TEST(ConfigCryptoTest, UnknownKeyIsRejectedWithItsPosition) {
  auto p = parse(withCrypto("provider = [\"legacy\"]\n"));
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.errors.size(), 1u) << joined(p.errors);
  EXPECT_TRUE(contains(p.errors[0], "t.toml:2:1: "));
  EXPECT_TRUE(contains(p.errors[0], "provider"));
  EXPECT_TRUE(contains(p.errors[0], "providers"));
}

TEST(ConfigCryptoTest, ProvidersMustBeAnArrayOfNames) {
  auto p = parse(withCrypto("providers = \"legacy\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:13: wrong type for \"providers\" in [crypto]; expected an array of strings, got string"));

  p = parse(withCrypto("providers = [\"default\", 3]\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:25: wrong type for \"providers\" in [crypto]"));

  p = parse(withCrypto("providers = [\"\"]\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:14: provider \"\" in [crypto] is not a provider name or path; expected"));
}

TEST(ConfigCryptoTest, ProviderListedTwiceIsAnError) {
  auto p = parse(withCrypto("providers = [\"default\", \"legacy\", \"default\"]\n"));
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.errors.size(), 1u) << joined(p.errors);
  EXPECT_TRUE(contains(p.errors[0], "t.toml:2:35: provider \"default\" is listed twice in [crypto]; expected each provider once"));
}

TEST(ConfigCryptoTest, PropertyQueryIsAStringCheckedByOpenSslLater) {
  // The grammar is OpenSSL's (tls/crypto_setup.cc): the loader keeps any text without control
  // characters, so "provider=" reaches EVP_set_default_properties and fails there.
  auto p = parse(withCrypto("property_query = \"provider=\"\n"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_EQ(p.config->crypto.property_query, "provider=");

  p = parse(withCrypto("property_query = 1\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:18: wrong type for \"property_query\" in [crypto]; expected a string, got integer"));

  p = parse(withCrypto("property_query = \"provider=default\\n\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:18: property_query in [crypto] contains a control character"));
}

TEST(ConfigCryptoTest, EngineIdMustBeAWord) {
  auto p = parse(withCrypto("engine = \"\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:10: engine \"\" in [crypto] is not an engine id; expected"));

  p = parse(withCrypto("engine = \"af alg\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "engine \"af alg\" in [crypto] is not an engine id"));

  p = parse(withCrypto("engine = \"afalg\"\n"));
  ASSERT_TRUE(p.config) << joined(p.errors);
  EXPECT_EQ(p.config->crypto.engine, "afalg");
  EXPECT_TRUE(p.config->crypto.engine_algorithms.empty());  // = ALL
}

TEST(ConfigCryptoTest, EngineAlgorithmsAreCheckedAgainstTheClasses) {
  auto p = parse(withCrypto("engine = \"afalg\"\nengine_algorithms = [\"CIPHERS\", \"AES\"]\n"));
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.errors.size(), 1u) << joined(p.errors);
  EXPECT_TRUE(contains(p.errors[0], "t.toml:3:33: unknown engine algorithm class \"AES\" in [crypto]; "
                                    "expected each one of: RSA, EC, DH, PKEY, CIPHERS, DIGESTS, ALL"));

  p = parse(withCrypto("engine = \"afalg\"\nengine_algorithms = [\"RSA\", \"rsa\"]\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:3:29: engine algorithm class \"RSA\" is listed twice in [crypto]"));

  p = parse(withCrypto("engine = \"afalg\"\nengine_algorithms = []\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:3:21: empty engine_algorithms in [crypto]"));
}

TEST(ConfigCryptoTest, EngineAlgorithmsNeedAnEngine) {
  auto p = parse(withCrypto("engine_algorithms = [\"RSA\"]\n"));
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.errors.size(), 1u) << joined(p.errors);
  EXPECT_TRUE(contains(p.errors[0], "t.toml:2:21: engine_algorithms in [crypto] without an engine; expected an \"engine\" key"));
}

TEST(ConfigCryptoTest, AsyncMustBeABool) {
  auto p = parse(withCrypto("async = \"yes\"\n"));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:2:9: wrong type for \"async\" in [crypto]"));
}

TEST(ConfigCryptoTest, CryptoMustBeATable) {
  auto p = parse("crypto = \"default\"\n" + withCrypto("").substr(9));
  ASSERT_FALSE(p.config);
  EXPECT_TRUE(contains(joined(p.errors), "t.toml:1:10: wrong type for \"crypto\" in the top-level table; expected a table ([crypto])"));
}

}  // namespace
}  // namespace ringlb::balancer
