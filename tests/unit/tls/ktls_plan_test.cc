// kTLS decisions (pure) and the kernel probe on this machine.
#include "tls/ktls_plan.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tls/ktls_probe.h"

namespace ringlb::tls {
namespace {

KtlsCaps fullKernel() {
  KtlsCaps caps;
  caps.ulp = true;
  for (size_t i = 0; i < kKtlsCipherCount; ++i) caps.tx[i] = caps.rx[i] = true;
  return caps;
}

KtlsCaps noUlp() {
  KtlsCaps caps;
  caps.reason = "kernel has no TLS ULP: setsockopt(TCP_ULP, \"tls\"): No such file or directory";
  return caps;
}

TEST(KtlsPlanTest, AeadSuitesMapToKernelCiphersAndOthersDoNot) {
  EXPECT_EQ(ktlsCipherFromName("TLS_AES_128_GCM_SHA256"), KtlsCipher::AesGcm128);
  EXPECT_EQ(ktlsCipherFromName("TLS_AES_256_GCM_SHA384"), KtlsCipher::AesGcm256);
  EXPECT_EQ(ktlsCipherFromName("TLS_CHACHA20_POLY1305_SHA256"), KtlsCipher::Chacha20Poly1305);
  EXPECT_EQ(ktlsCipherFromName("ECDHE-RSA-AES128-GCM-SHA256"), KtlsCipher::AesGcm128);
  EXPECT_EQ(ktlsCipherFromName("ECDHE-ECDSA-AES256-GCM-SHA384"), KtlsCipher::AesGcm256);
  EXPECT_EQ(ktlsCipherFromName("ECDHE-RSA-CHACHA20-POLY1305"), KtlsCipher::Chacha20Poly1305);
  EXPECT_EQ(ktlsCipherFromName("TLS_AES_128_CCM_SHA256"), std::nullopt);
  EXPECT_EQ(ktlsCipherFromName("ECDHE-RSA-AES128-SHA256"), std::nullopt);  // CBC
}

TEST(KtlsPlanTest, FullKernelAndAeadSuiteUsesTxAndRx) {
  KtlsPlan plan = ktlsPlan(KtlsMode::Auto, fullKernel(), 0x0304, "TLS_AES_256_GCM_SHA384", KtlsSide::Client);
  EXPECT_TRUE(plan.full());
  EXPECT_EQ(plan.logValue(), "tx,rx");
  EXPECT_EQ(plan.describe(fullKernel()), "ktls: client TX+RX (TLS_AES_256_GCM_SHA384)");
  EXPECT_TRUE(ktlsPlan(KtlsMode::On, fullKernel(), 0x0303, "ECDHE-RSA-AES128-GCM-SHA256", KtlsSide::Backend).full());
}

TEST(KtlsPlanTest, Tls13BackendIsRefusedBecauseItsTicketsComeAfterTheSwitch) {
  KtlsPlan plan = ktlsPlan(KtlsMode::Auto, fullKernel(), 0x0304, "TLS_AES_128_GCM_SHA256", KtlsSide::Backend);
  EXPECT_FALSE(plan.tx);
  EXPECT_EQ(plan.logValue(), "off(tickets)");
  KtlsPlan client = ktlsPlan(KtlsMode::Auto, fullKernel(), 0x0304, "TLS_AES_128_GCM_SHA256", KtlsSide::Client);
  ktlsRelayPlan(client, &plan);
  EXPECT_EQ(client.logValue(), "off(other-side)");
}

TEST(KtlsPlanTest, ConfigOffWinsOverEverything) {
  KtlsPlan plan = ktlsPlan(KtlsMode::Off, fullKernel(), 0x0304, "TLS_AES_128_GCM_SHA256", KtlsSide::Client);
  EXPECT_FALSE(plan.tx);
  EXPECT_FALSE(plan.rx);
  EXPECT_EQ(plan.logValue(), "off(config)");
  EXPECT_EQ(plan.describe(fullKernel()), "ktls: client off in [crypto]");
}

TEST(KtlsPlanTest, KernelWithoutTheUlpSaysWhy) {
  KtlsPlan plan = ktlsPlan(KtlsMode::Auto, noUlp(), 0x0304, "TLS_AES_128_GCM_SHA256", KtlsSide::Backend);
  EXPECT_FALSE(plan.tx);
  EXPECT_EQ(plan.logValue(), "off(kernel)");
  EXPECT_EQ(plan.describe(noUlp()),
            "ktls: backend unavailable: kernel has no TLS ULP: setsockopt(TCP_ULP, \"tls\"): No such file or directory");
}

TEST(KtlsPlanTest, CipherTheKernelLacksIsNamed) {
  KtlsCaps caps = fullKernel();
  caps.tx[static_cast<size_t>(KtlsCipher::Chacha20Poly1305)] = false;  // e.g. chacha20poly1305 module missing
  caps.rx[static_cast<size_t>(KtlsCipher::Chacha20Poly1305)] = false;
  KtlsPlan plan = ktlsPlan(KtlsMode::Auto, caps, 0x0304, "TLS_CHACHA20_POLY1305_SHA256", KtlsSide::Client);
  EXPECT_FALSE(plan.tx);
  EXPECT_EQ(plan.describe(caps), "ktls: client cipher TLS_CHACHA20_POLY1305_SHA256 unsupported by kernel");
  plan = ktlsPlan(KtlsMode::Auto, caps, 0x0304, "TLS_AES_128_CCM_SHA256", KtlsSide::Client);
  EXPECT_EQ(plan.describe(caps), "ktls: client cipher TLS_AES_128_CCM_SHA256 unsupported by kernel");
  EXPECT_EQ(plan.logValue(), "off(cipher)");
}

TEST(KtlsPlanTest, TxOnlyKernelIsNotAFullPlan) {
  KtlsCaps caps = fullKernel();
  caps.rx[static_cast<size_t>(KtlsCipher::AesGcm128)] = false;  // TX-only kernels (4.13 .. 4.16)
  KtlsPlan plan = ktlsPlan(KtlsMode::Auto, caps, 0x0303, "ECDHE-RSA-AES128-GCM-SHA256", KtlsSide::Client);
  EXPECT_TRUE(plan.tx);
  EXPECT_FALSE(plan.full());
  EXPECT_EQ(plan.why, KtlsRefusal::RxNotInKernel);
}

TEST(KtlsPlanTest, OldProtocolVersionsAreRefused) {
  EXPECT_EQ(ktlsPlan(KtlsMode::Auto, fullKernel(), 0x0302, "ECDHE-RSA-AES128-GCM-SHA256", KtlsSide::Client).why,
            KtlsRefusal::Version);
}

TEST(KtlsPlanTest, RelayNeedsBothSidesOrAPlainBackend) {
  KtlsCaps caps = fullKernel();
  KtlsPlan client = ktlsPlan(KtlsMode::Auto, caps, 0x0304, "TLS_AES_128_GCM_SHA256", KtlsSide::Client);
  ktlsRelayPlan(client, nullptr);  // plain backend
  EXPECT_TRUE(client.full());

  KtlsPlan backend = ktlsPlan(KtlsMode::Auto, caps, 0x0303, "ECDHE-RSA-AES128-GCM-SHA256", KtlsSide::Backend);
  ktlsRelayPlan(client, &backend);
  EXPECT_TRUE(client.full());
  EXPECT_TRUE(backend.full());

  KtlsPlan ccm = ktlsPlan(KtlsMode::Auto, caps, 0x0304, "TLS_AES_128_CCM_SHA256", KtlsSide::Backend);
  ktlsRelayPlan(client, &ccm);
  EXPECT_FALSE(client.tx);
  EXPECT_EQ(client.logValue(), "off(other-side)");
  EXPECT_EQ(ccm.logValue(), "off(cipher)");  // the side at fault keeps its own reason
}

TEST(KtlsCapsTest, SummaryListsDirectionsAndCiphers) {
  EXPECT_EQ(fullKernel().summary(), "kTLS: TX+RX, AES-GCM-128, AES-GCM-256, ChaCha20-Poly1305");
  KtlsCaps caps = fullKernel();
  caps.rx[2] = false;
  EXPECT_EQ(caps.summary(), "kTLS: TX+RX, AES-GCM-128, AES-GCM-256, ChaCha20-Poly1305 (TX only)");
  EXPECT_EQ(noUlp().summary(),
            "kTLS: unavailable (kernel has no TLS ULP: setsockopt(TCP_ULP, \"tls\"): No such file or directory)");
}

// The probe agrees with the kernel's own list of registered ULPs (which it may have grown by
// autoloading the tls module, for a caller with CAP_NET_ADMIN).
TEST(KtlsCapsTest, ProbeAgreesWithTheKernelsUlpList) {
  KtlsCaps caps = probeKtls();
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string ulps;
  std::getline(f, ulps);
  bool listed = (" " + ulps + " ").find(" tls ") != std::string::npos;
  EXPECT_EQ(caps.ulp, listed) << caps.summary() << " vs tcp_available_ulp = \"" << ulps << "\"";
  if (!caps.ulp) {
    EXPECT_NE(caps.reason.find("setsockopt(TCP_ULP, \"tls\")"), std::string::npos) << caps.reason;
    EXPECT_TRUE(caps.summary().starts_with("kTLS: unavailable ("));
  }
  EXPECT_EQ(&ktlsCaps(), &ktlsCaps());  // probed once per process
}

}  // namespace
}  // namespace ringlb::tls
