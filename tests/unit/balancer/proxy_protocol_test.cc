#include "balancer/proxy_protocol.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "balancer/proxy_protocol_parse.h"

namespace ringlb::balancer {
namespace {

using Bytes = std::vector<uint8_t>;

core::SocketAddress addr(const char* text) { return *core::SocketAddress::parse(text); }

// GCC 12 warns about designated initializers that leave members out.
ProxyV2Tlvs tlvs(std::string_view authority, std::string_view alpn, const ProxyV2Ssl* ssl = nullptr) {
  ProxyV2Tlvs out;
  out.authority = authority;
  out.alpn = alpn;
  out.ssl = ssl;
  return out;
}

std::string hex(std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : data) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

Bytes encode(const core::SocketAddress& src, const core::SocketAddress& dst, const ProxyV2Tlvs& tlvs) {
  Bytes out(kProxyV2MaxHeader);
  size_t n = encodeProxyV2(out, src, dst, tlvs);
  out.resize(n);
  return out;
}

ProxyHeader decode(const Bytes& header) {
  ProxyHeader h;
  ProxyParseResult r = parseProxyHeader(header, ProxyVersionAccepted::V2, h);
  EXPECT_EQ(r.status, ProxyParseStatus::Complete) << proxyParseErrorName(r.error);
  EXPECT_EQ(r.consumed, header.size());
  return h;
}

ProxyV2Ssl fullSsl() {
  ProxyV2Ssl ssl;
  ssl.client = kPp2ClientSsl | kPp2ClientCertConn | kPp2ClientCertSess;
  ssl.verify = 0;
  ssl.version = "TLSv1.3";
  ssl.cn = "client.example";
  ssl.cipher = "TLS_AES_128_GCM_SHA256";
  ssl.sig_alg = "RSA-SHA256";
  ssl.key_alg = "RSA2048";
  return ssl;
}

TEST(ProxyV2EncodeTest, RoundTripsAddressesAndTlvsThroughTheParser) {
  for (auto [src, dst] : {std::pair{"192.0.2.10:51234", "198.51.100.1:443"},
                          std::pair{"[2001:db8::1]:40000", "[2001:db8::2]:8443"}}) {
    Bytes header = encode(addr(src), addr(dst), tlvs("example.com", "h2", nullptr));
    ProxyHeader h = decode(header);
    ASSERT_TRUE(h.has_addresses);
    EXPECT_EQ(h.source.toString(), src);
    EXPECT_EQ(h.destination.toString(), dst);
    EXPECT_EQ(h.authority, "example.com");
    EXPECT_EQ(h.alpn, "h2");
    EXPECT_FALSE(h.ssl.present);
  }
}

TEST(ProxyV2EncodeTest, MixedOrUnixFamiliesAreSentAsUnspecWithTlvs) {
  Bytes header = encode(addr("192.0.2.1:1"), addr("[::1]:2"), tlvs("", "http/1.1", nullptr));
  EXPECT_EQ(header[13], 0x00);
  ProxyHeader h = decode(header);
  EXPECT_FALSE(h.has_addresses);
  EXPECT_EQ(h.alpn, "http/1.1");
  h = decode(encode(addr("unix:/run/a.sock"), addr("unix:/run/b.sock"), tlvs("", "")));
  EXPECT_FALSE(h.has_addresses);
}

TEST(ProxyV2EncodeTest, SslBlockDecodesToWhatWasEncoded) {
  ProxyV2Ssl ssl = fullSsl();
  ssl.verify = 0x0000001Au;  // X509_V_ERR_CERT_HAS_EXPIRED, say
  Bytes header = encode(addr("10.0.0.1:5000"), addr("10.0.0.2:443"), tlvs("example.com", "", &ssl));
  ProxyHeader h = decode(header);
  ASSERT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.client, kPp2ClientSsl | kPp2ClientCertConn | kPp2ClientCertSess);
  EXPECT_EQ(h.ssl.verify, 0x1Au);
  EXPECT_EQ(h.ssl.version, "TLSv1.3");
  EXPECT_EQ(h.ssl.cn, "client.example");
  EXPECT_EQ(h.ssl.cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(h.ssl.sig_alg, "RSA-SHA256");
  EXPECT_EQ(h.ssl.key_alg, "RSA2048");
  EXPECT_EQ(h.authority, "example.com");
}

TEST(ProxyV2EncodeTest, SslBlockOmitsEmptySubTlvs) {
  ProxyV2Ssl ssl;
  ssl.client = kPp2ClientSsl;
  ssl.version = "TLSv1.2";
  Bytes header = encode(addr("10.0.0.1:5000"), addr("10.0.0.2:443"), tlvs("", "", &ssl));
  // 16 fixed + 12 addresses + SSL TLV (3 + client 1 + verify 4 + version sub-TLV 3 + 7).
  EXPECT_EQ(header.size(), 16u + 12u + 3u + 5u + 3u + 7u);
  ProxyHeader h = decode(header);
  ProxyTlvReader reader(h.tlvs);
  uint8_t type = 0;
  std::span<const uint8_t> value;
  ASSERT_TRUE(reader.next(type, value));
  EXPECT_EQ(type, kPp2TypeSsl);
  ProxyTlvReader sub(value.subspan(5));
  ASSERT_TRUE(sub.next(type, value));
  EXPECT_EQ(type, kPp2SubtypeSslVersion);
  EXPECT_FALSE(sub.next(type, value));
  EXPECT_FALSE(sub.truncated());
  EXPECT_EQ(h.ssl.version, "TLSv1.2");
  EXPECT_TRUE(h.ssl.cn.empty());
}

TEST(ProxyV2EncodeTest, MaxHeaderIsExactlyTheLargestEncoding) {
  std::string big(kProxyV2MaxTlvValue, 'x');
  ProxyV2Ssl ssl{.client = kPp2ClientSsl, .verify = 0, .version = big, .cn = big, .cipher = big,
                 .sig_alg = big, .key_alg = big};
  Bytes out(kProxyV2MaxHeader);
  size_t n = encodeProxyV2(out, addr("[::1]:1"), addr("[::2]:2"), tlvs(big, big, &ssl));
  EXPECT_EQ(n, kProxyV2MaxHeader);
  ProxyHeader h = decode(out);
  EXPECT_EQ(h.ssl.key_alg.size(), kProxyV2MaxTlvValue);
  // The default parser limit accepts the largest header we send.
  EXPECT_LE(kProxyV2MaxHeader, ProxyParseLimits{}.max_v2_header);
}

TEST(ProxyV2EncodeTest, FailsOnOverCapValueOrShortBuffer) {
  std::string too_big(kProxyV2MaxTlvValue + 1, 'x');
  Bytes out(kProxyV2MaxHeader);
  EXPECT_EQ(encodeProxyV2(out, addr("10.0.0.1:1"), addr("10.0.0.2:2"), tlvs(too_big, "", nullptr)), 0u);
  ProxyV2Ssl ssl;
  ssl.cn = too_big;
  EXPECT_EQ(encodeProxyV2(out, addr("10.0.0.1:1"), addr("10.0.0.2:2"), tlvs("", "", &ssl)), 0u);
  size_t exact = encodeProxyV2(out, addr("10.0.0.1:1"), addr("10.0.0.2:2"), tlvs("", "h2", nullptr));
  ASSERT_EQ(exact, 16u + 12u + 5u);
  Bytes small(exact);
  EXPECT_EQ(encodeProxyV2(small, addr("10.0.0.1:1"), addr("10.0.0.2:2"), tlvs("", "h2", nullptr)), exact);
  small.pop_back();
  EXPECT_EQ(encodeProxyV2(small, addr("10.0.0.1:1"), addr("10.0.0.2:2"), tlvs("", "h2", nullptr)), 0u);
}

// The vectors the Python decoder (tests/integration/proxy_v2.py) is checked against: both
// sides must agree byte for byte with this encoder.
std::map<std::string, std::string> loadVectors() {
  std::ifstream in(std::string(RINGLB_SOURCE_DIR) + "/tests/integration/proxy_v2_vectors.txt");
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, hex_bytes;
    fields >> name >> hex_bytes;
    out[name] = hex_bytes;
  }
  return out;
}

TEST(ProxyV2EncodeTest, MatchesTheVectorsSharedWithThePythonDecoder) {
  auto vectors = loadVectors();
  ASSERT_EQ(vectors.size(), 3u);
  Bytes tcp4 = encode(addr("192.0.2.10:51234"), addr("198.51.100.1:443"), tlvs("example.com", "h2", nullptr));
  EXPECT_EQ(vectors["tcp4_alpn_authority"], hex(tcp4));
  ProxyV2Ssl ssl = fullSsl();
  Bytes tcp6 = encode(addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:8443"), tlvs("api.example.com", "", &ssl));
  EXPECT_EQ(vectors["tcp6_ssl"], hex(tcp6));
  Bytes unspec = encode(addr("192.0.2.1:1"), addr("[::1]:2"), tlvs("", "http/1.1", nullptr));
  EXPECT_EQ(vectors["unspec_alpn"], hex(unspec));
}

}  // namespace
}  // namespace ringlb::balancer
