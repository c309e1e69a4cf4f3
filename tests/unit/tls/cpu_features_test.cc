// CPU extensions as OpenSSL sees them: CPUID words masked by OPENSSL_ia32cap the way OpenSSL
// 3.0's crypto/cpuid.c does it.
#include "tls/cpu_features.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringlb::tls {
namespace {

// A CPU with every extension the report names, and an OS that saves the AVX-512 state.
CpuIdWords everything() {
  CpuIdWords cpu;
  cpu.words[0] = 1u << 24;                              // FXSR
  cpu.words[1] = (1u << 25) | (1u << 1) | (1u << 27);   // AES-NI, PCLMULQDQ, OSXSAVE
  cpu.words[2] = (1u << 16) | (1u << 29);               // AVX512F, SHA-NI
  cpu.words[3] = 1u << 9;                               // VAES
  cpu.xcr0 = 0xe7;
  return cpu;
}

TEST(CpuFeaturesTest, WithoutTheVariableEveryPresentExtensionIsEnabled) {
  EXPECT_EQ(describeCpuFeatures(everything(), nullptr),
            (std::vector<std::string>{"AES-NI: present, enabled", "VAES: present, enabled",
                                      "AVX-512: present, enabled", "PCLMULQDQ: present, enabled",
                                      "SHA-NI: present, enabled"}));
}

TEST(CpuFeaturesTest, TildeMaskDisablesAesNiAndPclmulAndWithoutColonTheExtendedWords) {
  // OPENSSL_ia32cap(3)'s example: bit 57 (AES-NI) and bit 33 (PCLMULQDQ). No ":" part, so
  // OpenSSL also zeroes words 2-3 (AVX-512, SHA-NI, VAES).
  auto lines = describeCpuFeatures(everything(), "~0x200000200000000");
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "AES-NI: present, disabled by OPENSSL_ia32cap", "VAES: present, disabled by OPENSSL_ia32cap",
                       "AVX-512: present, disabled by OPENSSL_ia32cap",
                       "PCLMULQDQ: present, disabled by OPENSSL_ia32cap",
                       "SHA-NI: present, disabled by OPENSSL_ia32cap"}));
}

TEST(CpuFeaturesTest, ColonPartMasksOrKeepsTheExtendedWords) {
  auto keep = describeCpuFeatures(everything(), "~0x200000000000000:~0");
  EXPECT_EQ(keep[0], "AES-NI: present, disabled by OPENSSL_ia32cap");
  EXPECT_EQ(keep[1], "VAES: present, enabled");
  EXPECT_EQ(keep[3], "PCLMULQDQ: present, enabled");
  // ":~0x20000000" clears SHA-NI (word 2 bit 29) only; the leading ":" keeps words 0-1.
  auto sha = describeCpuFeatures(everything(), ":~0x20000000");
  EXPECT_EQ(sha[0], "AES-NI: present, enabled");
  EXPECT_EQ(sha[4], "SHA-NI: present, disabled by OPENSSL_ia32cap");
  EXPECT_EQ(sha[2], "AVX-512: present, enabled");
  // Word 3 is the high half of the ":" number: VAES is bit 9 + 32.
  auto vaes = describeCpuFeatures(everything(), ":~0x20000000000");
  EXPECT_EQ(vaes[1], "VAES: present, disabled by OPENSSL_ia32cap");
}

TEST(CpuFeaturesTest, ClearingFxsrAlsoClearsAesNiAndPclmul) {
  auto lines = describeCpuFeatures(everything(), "~0x1000000:~0");
  EXPECT_EQ(lines[0], "AES-NI: present, disabled by OPENSSL_ia32cap");
  EXPECT_EQ(lines[3], "PCLMULQDQ: present, disabled by OPENSSL_ia32cap");
  EXPECT_EQ(lines[1], "VAES: present, enabled");
}

TEST(CpuFeaturesTest, ReplacingTheVectorCanClaimAbsentExtensions) {
  CpuIdWords none;
  auto lines = describeCpuFeatures(none, "0x200000000000000");
  EXPECT_EQ(lines[0], "AES-NI: absent, but forced on by OPENSSL_ia32cap (OpenSSL may fault)");
  EXPECT_EQ(lines[4], "SHA-NI: absent");
}

TEST(CpuFeaturesTest, ExtensionWhoseStateTheOsDoesNotSaveIsDisabled) {
  CpuIdWords cpu = everything();
  cpu.xcr0 = 0x7;  // SSE + AVX state only
  auto lines = describeCpuFeatures(cpu, nullptr);
  EXPECT_EQ(lines[2], "AVX-512: present, disabled (the OS does not save its register state)");
  EXPECT_EQ(lines[1], "VAES: present, enabled");
}

TEST(CpuFeaturesTest, NumbersParseLikeOpenSsl) {
  std::array<uint32_t, 4> cpuid{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
  EXPECT_EQ(applyIa32capEnv(cpuid, "~010")[0], 0xfffffff7u);   // octal 010 = 8
  EXPECT_EQ(applyIa32capEnv(cpuid, "~10")[0], 0xfffffff5u);    // decimal
  EXPECT_EQ(applyIa32capEnv(cpuid, "~0X10zz")[0], 0xffffffefu);  // stops at 'z'
  EXPECT_EQ(applyIa32capEnv(cpuid, "~0")[2], 0u);              // no ':' zeroes words 2-3
  EXPECT_EQ(applyIa32capEnv(cpuid, nullptr), cpuid);
}

TEST(CpuFeaturesTest, ThisMachineReportsFiveLines) {
  auto lines = describeCpuFeatures(readCpuId(), nullptr);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(lines[0].starts_with("AES-NI: ")) << lines[0];
}

}  // namespace
}  // namespace ringlb::tls
