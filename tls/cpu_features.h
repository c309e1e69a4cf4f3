// The x86-64 instruction set extensions that matter to TLS record and handshake speed, as the
// CPU reports them and as OpenSSL will use them.
//
// OpenSSL 3.0 keeps its view in OPENSSL_ia32cap_P (not exported: OPENSSL_ia32cap_loc() is
// gone from the 3.0 API), filled at library load from CPUID and then masked by the
// OPENSSL_ia32cap environment variable (see OPENSSL_ia32cap(3)). This file re-derives that
// vector the same way: CPUID ourselves, then OpenSSL's documented env semantics.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ringlb::tls {

// OpenSSL's capability words: [0] CPUID.1:EDX, [1] CPUID.1:ECX, [2] CPUID.(7,0):EBX,
// [3] CPUID.(7,0):ECX; xcr0 = XGETBV(0) (which register states the OS saves), 0 if no OSXSAVE.
struct CpuIdWords {
  std::array<uint32_t, 4> words{};
  uint64_t xcr0 = 0;
};

// This CPU (all zero on non-x86-64 builds).
CpuIdWords readCpuId();

// The capability words after OpenSSL 3.0's OPENSSL_ia32cap handling (crypto/cpuid.c):
// "[~]A[:[~]B]" where A covers words 0-1 and B words 2-3; "~" clears the given bits, no "~"
// replaces the words, a leading ":" keeps words 0-1; without ":B" words 2-3 become zero.
// `env` null = variable unset = the CPUID words unchanged.
std::array<uint32_t, 4> applyIa32capEnv(const std::array<uint32_t, 4>& cpuid, const char* env);

// One line per extension: "AES-NI: present, enabled", "VAES: present, disabled by
// OPENSSL_ia32cap", "AVX-512: present, disabled (the OS does not save the AVX-512 state)",
// "SHA-NI: absent". "enabled" means OpenSSL's capability vector allows its code paths for it;
// whether a given algorithm has such a path depends on the OpenSSL version.
// Extensions: AES-NI, VAES, AVX-512 (AVX512F), PCLMULQDQ, SHA-NI.
std::vector<std::string> describeCpuFeatures(const CpuIdWords& cpu, const char* ia32cap_env);

}  // namespace ringlb::tls
