#include "tls/cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <string_view>

namespace ringlb::tls {
namespace {

struct Feature {
  std::string_view name;
  unsigned word;
  unsigned bit;
  uint64_t xcr0_needed;  // register state the OS must save for the extension to be usable
};

// Intel SDM vol. 2A, CPUID leaf 1 and leaf 7 sub-leaf 0; XCR0 bits 1-2 = SSE/AVX state,
// 5-7 = opmask and ZMM state (AVX-512).
constexpr uint64_t kAvxState = 0x6;
constexpr uint64_t kAvx512State = 0xe6;
constexpr Feature kFeatures[] = {
    {"AES-NI", 1, 25, 0},
    {"VAES", 3, 9, kAvxState},
    {"AVX-512", 2, 16, kAvx512State},
    {"PCLMULQDQ", 1, 1, 0},
    {"SHA-NI", 2, 29, 0},
};

// OpenSSL's ossl_strtouint64: "0x" hex, leading "0" octal, else decimal; stops at the first
// character that is not a digit of the base.
uint64_t parseNumber(std::string_view text) {
  unsigned base = 10;
  size_t i = 0;
  if (i < text.size() && text[i] == '0') {
    base = 8;
    ++i;
    if (i < text.size() && (text[i] == 'x' || text[i] == 'X')) {
      base = 16;
      ++i;
    }
  }
  uint64_t value = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    unsigned digit = c >= '0' && c <= '9' ? static_cast<unsigned>(c - '0')
                     : c >= 'a' && c <= 'f' ? static_cast<unsigned>(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? static_cast<unsigned>(c - 'A' + 10)
                                            : 99;
    if (digit >= base) break;
    value = value * base + digit;
  }
  return value;
}

}  // namespace

CpuIdWords readCpuId() {
  CpuIdWords cpu;
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) != 0) {
    cpu.words[0] = d;
    cpu.words[1] = c;
    if ((c & (1u << 27)) != 0) {  // OSXSAVE: XGETBV is allowed
      uint32_t lo = 0, hi = 0;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      cpu.xcr0 = (uint64_t{hi} << 32) | lo;
    }
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) != 0) {
    cpu.words[2] = b;
    cpu.words[3] = c;
  }
#endif
  return cpu;
}

std::array<uint32_t, 4> applyIa32capEnv(const std::array<uint32_t, 4>& cpuid, const char* env) {
  if (env == nullptr) return cpuid;
  std::string_view text(env);
  std::array<uint32_t, 4> out = cpuid;
  uint64_t low = (uint64_t{cpuid[1]} << 32) | cpuid[0];
  if (!text.empty() && text[0] == '~') {
    uint64_t mask = parseNumber(text.substr(1));
    low &= ~mask;
    // Clearing FXSR (bit 24) also clears the XMM-only extensions: PCLMULQDQ, XOP, AES-NI, AVX.
    if ((mask & (1u << 24)) != 0) low &= ~(uint64_t{(1u << 1) | (1u << 11) | (1u << 25) | (1u << 28)} << 32);
  } else if (text.empty() || text[0] != ':') {
    low = parseNumber(text);
  }
  out[0] = static_cast<uint32_t>(low);
  out[1] = static_cast<uint32_t>(low >> 32);
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    out[2] = out[3] = 0;
    return out;
  }
  std::string_view extended = text.substr(colon + 1);
  if (!extended.empty() && extended[0] == '~') {
    uint64_t mask = parseNumber(extended.substr(1));
    out[2] &= ~static_cast<uint32_t>(mask);
    out[3] &= ~static_cast<uint32_t>(mask >> 32);
  } else {
    uint64_t value = parseNumber(extended);
    out[2] = static_cast<uint32_t>(value);
    out[3] = static_cast<uint32_t>(value >> 32);
  }
  return out;
}

std::vector<std::string> describeCpuFeatures(const CpuIdWords& cpu, const char* ia32cap_env) {
  std::vector<std::string> lines;
#if !defined(__x86_64__)
  lines.push_back("CPU extensions: not an x86-64 build");
  return lines;
#endif
  std::array<uint32_t, 4> openssl = applyIa32capEnv(cpu.words, ia32cap_env);
  for (const Feature& f : kFeatures) {
    bool present = (cpu.words[f.word] >> f.bit & 1u) != 0;
    bool allowed = (openssl[f.word] >> f.bit & 1u) != 0;
    bool os_saves = (cpu.xcr0 & f.xcr0_needed) == f.xcr0_needed;
    std::string line(f.name);
    if (!present) {
      line += allowed ? ": absent, but forced on by OPENSSL_ia32cap (OpenSSL may fault)" : ": absent";
    } else if (!allowed) {
      line += ": present, disabled by OPENSSL_ia32cap";
    } else if (!os_saves) {
      line += ": present, disabled (the OS does not save its register state)";
    } else {
      line += ": present, enabled";
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace ringlb::tls
