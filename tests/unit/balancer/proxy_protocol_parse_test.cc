#include "balancer/proxy_protocol_parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "balancer/proxy_protocol.h"

namespace ringlb::balancer {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A v2 header from its parts; `len` defaults to the real body length.
Bytes v2(uint8_t ver_cmd, uint8_t fam, const Bytes& body, int len = -1) {
  Bytes out(std::begin(kProxyV2Signature), std::end(kProxyV2Signature));
  out.push_back(ver_cmd);
  out.push_back(fam);
  size_t n = len < 0 ? body.size() : static_cast<size_t>(len);
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
  return concat(out, body);
}

Bytes tlv(uint8_t type, const Bytes& value) {
  Bytes out{type, static_cast<uint8_t>(value.size() >> 8), static_cast<uint8_t>(value.size())};
  return concat(out, value);
}

// 192.0.2.1:1234 -> 198.51.100.2:443
Bytes tcp4Block() { return {192, 0, 2, 1, 198, 51, 100, 2, 0x04, 0xD2, 0x01, 0xBB}; }

ProxyParseResult parse(const Bytes& data, ProxyHeader& h, ProxyVersionAccepted accepted = ProxyVersionAccepted::Any,
                       const ProxyParseLimits& limits = {}) {
  Bytes exact(data);  // exactly sized: a read past the end is an ASan report in sanitizer builds
  return parseProxyHeader(exact, accepted, h, limits);
}

ProxyParseError parseError(const Bytes& data, ProxyVersionAccepted accepted = ProxyVersionAccepted::Any,
                           const ProxyParseLimits& limits = {}) {
  ProxyHeader h;
  ProxyParseResult r = parse(data, h, accepted, limits);
  EXPECT_EQ(r.status, ProxyParseStatus::Invalid) << proxyParseErrorName(r.error);
  return r.error;
}

ProxyHeader parseComplete(const Bytes& data, size_t expected_consumed,
                          ProxyVersionAccepted accepted = ProxyVersionAccepted::Any) {
  ProxyHeader h;
  ProxyParseResult r = parse(data, h, accepted);
  EXPECT_EQ(r.status, ProxyParseStatus::Complete) << proxyParseErrorName(r.error);
  EXPECT_EQ(r.consumed, expected_consumed);
  return h;
}

// ---- version 1 ----

TEST(ProxyV1ParseTest, Tcp4LineGivesAddressesAndLeavesClientBytes) {
  std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  ProxyHeader h = parseComplete(bytes(line + "GET / HTTP/1.1\r\n"), line.size());
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.command, ProxyCommand::Proxy);
  ASSERT_TRUE(h.has_addresses);
  EXPECT_EQ(h.source.toString(), "192.168.0.1:56324");
  EXPECT_EQ(h.destination.toString(), "192.168.0.11:443");
}

TEST(ProxyV1ParseTest, Tcp6AcceptsCompressedAndFullForms) {
  ProxyHeader h = parseComplete(bytes("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"), 36);
  ASSERT_TRUE(h.has_addresses);
  EXPECT_EQ(h.source.toString(), "[2001:db8::1]:0");
  EXPECT_EQ(h.destination.toString(), "[::1]:65535");
  std::string full = "PROXY TCP6 FFFF:ffff:0000:0000:0000:0000:0000:0001 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  EXPECT_EQ(full.size(), 104u);  // the spec's longest TCP6 line
  h = parseComplete(bytes(full), full.size());
  EXPECT_EQ(h.source.toString(), "[ffff:ffff::1]:65535");
}

TEST(ProxyV1ParseTest, UnknownShortAndLongFormsUseRealAddresses) {
  ProxyHeader h = parseComplete(bytes("PROXY UNKNOWN\r\n"), 15);
  EXPECT_EQ(h.version, 1);
  EXPECT_FALSE(h.has_addresses);
  h = parseComplete(bytes("PROXY UNKNOWN whatever the sender put here\r\nX"), 44);
  EXPECT_FALSE(h.has_addresses);
}

TEST(ProxyV1ParseTest, LineOf107BytesIsAcceptedAnd108IsTooLong) {
  std::string addr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string worst = "PROXY UNKNOWN " + addr + " " + addr + " 65535 65535\r\n";
  ASSERT_EQ(worst.size(), 107u);
  parseComplete(bytes(worst), 107);
  std::string longer = "PROXY UNKNOWN " + addr + " " + addr + " 65535 655350\r\n";
  EXPECT_EQ(parseError(bytes(longer)), ProxyParseError::V1LineTooLong);
  // Decided at 107 bytes without a CRLF, whatever follows.
  EXPECT_EQ(parseError(bytes(std::string("PROXY UNKNOWN ") + std::string(93, 'x'))), ProxyParseError::V1LineTooLong);
}

TEST(ProxyV1ParseTest, RejectsLeadingZerosInAddressesAndPorts) {
  EXPECT_EQ(parseError(bytes("PROXY TCP4 192.168.0.01 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 010.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n")), ProxyParseError::V1BadPort);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1 00\r\n")), ProxyParseError::V1BadPort);
  parseComplete(bytes("PROXY TCP4 0.0.0.0 10.0.0.2 0 0\r\n"), 33);
}

TEST(ProxyV1ParseTest, RejectsOutOfRangeOrMalformedNumbers) {
  EXPECT_EQ(parseError(bytes("PROXY TCP4 256.0.0.1 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1.5 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10..0.1 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n")), ProxyParseError::V1BadPort);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n")), ProxyParseError::V1BadPort);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1 0x10\r\n")), ProxyParseError::V1BadPort);
  EXPECT_EQ(parseError(bytes("PROXY TCP6 2001:db8:::1 ::1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP6 12345::1 ::1 1 2\r\n")), ProxyParseError::V1BadAddress);
}

TEST(ProxyV1ParseTest, RejectsAddressOfTheOtherFamily) {
  EXPECT_EQ(parseError(bytes("PROXY TCP4 ::1 10.0.0.1 1 2\r\n")), ProxyParseError::V1BadAddress);
  EXPECT_EQ(parseError(bytes("PROXY TCP6 10.0.0.1 ::1 1 2\r\n")), ProxyParseError::V1BadAddress);
  // Section 2.1 allows only hex groups in IPv6: no embedded dotted quad.
  EXPECT_EQ(parseError(bytes("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n")), ProxyParseError::V1BadAddress);
}

TEST(ProxyV1ParseTest, RejectsWrongSpacingAndFieldCounts) {
  EXPECT_EQ(parseError(bytes("PROXY TCP4  10.0.0.1 10.0.0.2 1 2\r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1 2 \r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY TCP4\r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY \r\n")), ProxyParseError::V1BadSyntax);
  EXPECT_EQ(parseError(bytes("PROXY TCP4\t10.0.0.1 10.0.0.2 1 2\r\n")), ProxyParseError::V1BadFamily);
}

TEST(ProxyV1ParseTest, RejectsUnknownFamilies) {
  EXPECT_EQ(parseError(bytes("PROXY TCP5 10.0.0.1 10.0.0.2 1 2\r\n")), ProxyParseError::V1BadFamily);
  EXPECT_EQ(parseError(bytes("PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n")), ProxyParseError::V1BadFamily);
  EXPECT_EQ(parseError(bytes("PROXY tcp4 10.0.0.1 10.0.0.2 1 2\r\n")), ProxyParseError::V1BadFamily);
  EXPECT_EQ(parseError(bytes("PROXY UNKNOWNX\r\n")), ProxyParseError::V1BadFamily);
}

TEST(ProxyV1ParseTest, LoneCrOrLfIsNotALineEnd) {
  EXPECT_EQ(parseError(bytes("PROXY UNKNOWN\n")), ProxyParseError::V1BadLineEnding);
  EXPECT_EQ(parseError(bytes("PROXY UNKNOWN\rX\n")), ProxyParseError::V1BadLineEnding);
  EXPECT_EQ(parseError(bytes("PROXY TCP4 10.0.0.1\n10.0.0.2 1 2\r\n")), ProxyParseError::V1BadLineEnding);
}

// ---- signature and version selection ----

TEST(ProxySignatureTest, OtherProtocolsAreRejectedAtTheFirstWrongByte) {
  EXPECT_EQ(parseError(bytes("G")), ProxyParseError::BadSignature);
  EXPECT_EQ(parseError(Bytes{0x16, 0x03, 0x01}), ProxyParseError::BadSignature);
  EXPECT_EQ(parseError(bytes("PROXX")), ProxyParseError::BadSignature);
  EXPECT_EQ(parseError(bytes("PROXYTCP4")), ProxyParseError::BadSignature);
  EXPECT_EQ(parseError(Bytes{0x0D, 0x0A, 0x0D, 0x0A, 0x01}), ProxyParseError::BadSignature);
}

TEST(ProxySignatureTest, EmptyAndPartialSignaturesNeedMore) {
  ProxyHeader h;
  ProxyParseResult r = parse({}, h);
  EXPECT_EQ(r.status, ProxyParseStatus::NeedMore);
  EXPECT_EQ(r.bytes_needed, 1u);
  // Inside a signature every next byte can rule the stream out, so ask for one more.
  r = parse(bytes("PRO"), h);
  EXPECT_EQ(r.status, ProxyParseStatus::NeedMore);
  EXPECT_EQ(r.bytes_needed, 4u);
  r = parse(Bytes{0x0D, 0x0A}, h);
  EXPECT_EQ(r.status, ProxyParseStatus::NeedMore);
  EXPECT_EQ(r.bytes_needed, 3u);
  // From the fixed 16 bytes on, nothing is decided before the whole header is in.
  Bytes header = v2(0x21, 0x11, tcp4Block());
  r = parse(Bytes(header.begin(), header.begin() + 16), h);
  EXPECT_EQ(r.bytes_needed, header.size());
}

TEST(ProxySignatureTest, VersionNotAcceptedIsReportedOnceTheSignatureIsWhole) {
  Bytes v1 = bytes("PROXY UNKNOWN\r\n");
  Bytes v2local = v2(0x20, 0x00, {});
  EXPECT_EQ(parseError(v1, ProxyVersionAccepted::V2), ProxyParseError::VersionNotAccepted);
  EXPECT_EQ(parseError(v2local, ProxyVersionAccepted::V1), ProxyParseError::VersionNotAccepted);
  EXPECT_EQ(parseError(bytes("GET"), ProxyVersionAccepted::V2), ProxyParseError::BadSignature);
  ProxyHeader h;
  EXPECT_EQ(parse(bytes("PROX"), h, ProxyVersionAccepted::V2).status, ProxyParseStatus::NeedMore);
  parseComplete(v1, v1.size(), ProxyVersionAccepted::V1);
  parseComplete(v2local, v2local.size(), ProxyVersionAccepted::V2);
}

// ---- version 2 ----

TEST(ProxyV2ParseTest, Tcp4AndTcp6AddressesAreDecoded) {
  Bytes header = v2(0x21, 0x11, tcp4Block());
  ProxyHeader h = parseComplete(concat(header, bytes("\x16\x03\x01")), header.size());
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.command, ProxyCommand::Proxy);
  ASSERT_TRUE(h.has_addresses);
  EXPECT_EQ(h.source.toString(), "192.0.2.1:1234");
  EXPECT_EQ(h.destination.toString(), "198.51.100.2:443");
  EXPECT_TRUE(h.tlvs.empty());

  Bytes block6(36, 0);
  block6[15] = 1;                       // ::1
  block6[16] = 0x20, block6[17] = 0x01;  // 2001::
  block6[32] = 0xFF, block6[33] = 0xFF, block6[34] = 0, block6[35] = 80;
  h = parseComplete(v2(0x21, 0x21, block6), 52);
  EXPECT_EQ(h.source.toString(), "[::1]:65535");
  EXPECT_EQ(h.destination.toString(), "[2001::]:80");
}

TEST(ProxyV2ParseTest, LocalCommandDiscardsFamilyAndBlock) {
  // Section 2.2: LOCAL ignores the family (even an invalid one) and skips `len` bytes.
  Bytes header = v2(0x20, 0xFF, bytes("junk!"));
  ProxyHeader h = parseComplete(concat(header, bytes("client")), header.size());
  EXPECT_EQ(h.command, ProxyCommand::Local);
  EXPECT_FALSE(h.has_addresses);
  EXPECT_TRUE(h.authority.empty());
}

TEST(ProxyV2ParseTest, UnspecUdpAndUnixFallBackToRealAddressesButKeepTlvs) {
  Bytes alpn = tlv(kPp2TypeAlpn, bytes("h2"));
  ProxyHeader h = parseComplete(v2(0x21, 0x00, alpn), 16 + alpn.size());
  EXPECT_FALSE(h.has_addresses);
  EXPECT_EQ(h.alpn, "h2");
  h = parseComplete(v2(0x21, 0x12, concat(tcp4Block(), alpn)), 16 + 12 + alpn.size());
  EXPECT_FALSE(h.has_addresses);
  EXPECT_EQ(h.alpn, "h2");
  h = parseComplete(v2(0x21, 0x31, concat(Bytes(216, 'u'), alpn)), 16 + 216 + alpn.size());
  EXPECT_FALSE(h.has_addresses);
  EXPECT_EQ(h.alpn, "h2");
  parseComplete(v2(0x21, 0x22, Bytes(36, 0)), 52);
  parseComplete(v2(0x21, 0x32, Bytes(216, 0)), 232);
}

TEST(ProxyV2ParseTest, RejectsBadVersionAndCommand) {
  EXPECT_EQ(parseError(v2(0x11, 0x11, tcp4Block())), ProxyParseError::V2BadVersion);
  EXPECT_EQ(parseError(v2(0x31, 0x11, tcp4Block())), ProxyParseError::V2BadVersion);
  EXPECT_EQ(parseError(v2(0x22, 0x11, tcp4Block())), ProxyParseError::V2BadCommand);
  EXPECT_EQ(parseError(v2(0x2F, 0x11, tcp4Block())), ProxyParseError::V2BadCommand);
}

TEST(ProxyV2ParseTest, RejectsFamilyProtocolPairsOutsideTheSpec) {
  for (int fam : {0x01, 0x10, 0x13, 0x20, 0x30, 0x33, 0x41, 0xFF}) {
    EXPECT_EQ(parseError(v2(0x21, static_cast<uint8_t>(fam), Bytes(216, 0))), ProxyParseError::V2BadFamily) << fam;
  }
}

TEST(ProxyV2ParseTest, RejectsAddressBlockShorterThanTheFamilyNeeds) {
  Bytes block = tcp4Block();
  block.pop_back();
  EXPECT_EQ(parseError(v2(0x21, 0x11, block)), ProxyParseError::V2AddressBlockTooShort);
  EXPECT_EQ(parseError(v2(0x21, 0x21, Bytes(35, 0))), ProxyParseError::V2AddressBlockTooShort);
  EXPECT_EQ(parseError(v2(0x21, 0x31, Bytes(215, 0))), ProxyParseError::V2AddressBlockTooShort);
}

TEST(ProxyV2ParseTest, LengthOverTheLimitIsRejectedFromTheFixedHeaderAlone) {
  // Only the 16 fixed bytes: no need to buffer 16 + 5000 bytes to know.
  EXPECT_EQ(parseError(v2(0x21, 0x11, {}, 5000)), ProxyParseError::V2TooLong);
  EXPECT_EQ(parseError(v2(0x20, 0x00, {}, 65535)), ProxyParseError::V2TooLong);
  Bytes ok = v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeNoop, Bytes(100, 0))));
  EXPECT_EQ(parseError(ok, ProxyVersionAccepted::Any, {.max_v2_header = ok.size() - 1}), ProxyParseError::V2TooLong);
  parseComplete(ok, ok.size());
}

TEST(ProxyV2ParseTest, RejectsTruncatedTlvs) {
  Bytes block = tcp4Block();
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(block, {0x01}))), ProxyParseError::V2TlvTruncated);
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(block, {0x01, 0x00}))), ProxyParseError::V2TlvTruncated);
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(block, {0x01, 0x00, 0x03, 'h', '2'}))), ProxyParseError::V2TlvTruncated);
}

TEST(ProxyV2ParseTest, TlvsOfInterestAreViewsAndOthersAreSkipped) {
  Bytes body = concat(tcp4Block(), tlv(kPp2TypeNoop, {}));
  body = concat(body, tlv(kPp2TypeAuthority, bytes("example.com")));
  body = concat(body, tlv(0xE0, bytes("custom")));
  body = concat(body, tlv(kPp2TypeNetns, bytes("ns1")));
  body = concat(body, tlv(kPp2TypeAlpn, bytes("http/1.1")));
  body = concat(body, tlv(kPp2TypeUniqueId, bytes("id-42")));
  Bytes header = v2(0x21, 0x11, body);
  ProxyHeader h;
  ASSERT_EQ(parseProxyHeader(header, ProxyVersionAccepted::Any, h).status, ProxyParseStatus::Complete);
  EXPECT_EQ(h.authority, "example.com");
  EXPECT_EQ(h.alpn, "http/1.1");
  EXPECT_EQ(h.unique_id, "id-42");
  EXPECT_GE(reinterpret_cast<const uint8_t*>(h.authority.data()), header.data());
  EXPECT_LT(reinterpret_cast<const uint8_t*>(h.authority.data()), header.data() + header.size());
  EXPECT_EQ(h.tlvs.size(), body.size() - 12);
  int count = 0;
  ProxyTlvReader reader(h.tlvs);
  uint8_t type = 0;
  std::span<const uint8_t> value;
  while (reader.next(type, value)) ++count;
  EXPECT_EQ(count, 6);
  EXPECT_FALSE(reader.truncated());
}

TEST(ProxyV2ParseTest, RejectsDuplicateTlvsWeInterpret) {
  Bytes body = concat(tcp4Block(), tlv(kPp2TypeAuthority, bytes("a")));
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(body, tlv(kPp2TypeAuthority, bytes("b"))))),
            ProxyParseError::V2DuplicateTlv);
  Bytes ssl = tlv(kPp2TypeSsl, {0, 0, 0, 0, 0});
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(concat(tcp4Block(), ssl), ssl))), ProxyParseError::V2DuplicateTlv);
  // Types we skip may repeat.
  Bytes noop = tlv(kPp2TypeNoop, {});
  parseComplete(v2(0x21, 0x11, concat(concat(tcp4Block(), noop), noop)), 16 + 12 + 6);
}

TEST(ProxyV2ParseTest, SslTlvIsDecodedWithSubTlvs) {
  Bytes value = {kPp2ClientSsl | kPp2ClientCertConn, 0x00, 0x00, 0x00, 0x00};
  value = concat(value, tlv(kPp2SubtypeSslVersion, bytes("TLSv1.3")));
  value = concat(value, tlv(kPp2SubtypeSslCn, bytes("client.example")));
  value = concat(value, tlv(0x2F, bytes("future")));
  value = concat(value, tlv(kPp2SubtypeSslCipher, bytes("TLS_AES_128_GCM_SHA256")));
  ProxyHeader h = parseComplete(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeSsl, value))), 16 + 12 + 3 + value.size());
  ASSERT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.client, kPp2ClientSsl | kPp2ClientCertConn);
  EXPECT_EQ(h.ssl.verify, 0u);
  EXPECT_EQ(h.ssl.version, "TLSv1.3");
  EXPECT_EQ(h.ssl.cn, "client.example");
  EXPECT_EQ(h.ssl.cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_TRUE(h.ssl.sig_alg.empty());
  h = parseComplete(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeSsl, {0x01, 0x12, 0x34, 0x56, 0x78}))), 16 + 12 + 8);
  EXPECT_EQ(h.ssl.verify, 0x12345678u);
}

TEST(ProxyV2ParseTest, RejectsMalformedSslTlv) {
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeSsl, {1, 0, 0, 0})))), ProxyParseError::V2BadSslTlv);
  Bytes truncated_sub = {1, 0, 0, 0, 0, kPp2SubtypeSslVersion, 0, 9, 'T'};
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeSsl, truncated_sub)))), ProxyParseError::V2BadSslTlv);
  Bytes dup_sub = concat(concat(Bytes{1, 0, 0, 0, 0}, tlv(kPp2SubtypeSslCn, bytes("a"))), tlv(kPp2SubtypeSslCn, bytes("b")));
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeSsl, dup_sub)))), ProxyParseError::V2BadSslTlv);
}

TEST(ProxyV2ParseTest, Crc32cMatchesTheRfc4960CheckValue) {
  EXPECT_EQ(proxyCrc32c(bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(proxyCrc32c({}), 0u);
}

TEST(ProxyV2ParseTest, Crc32cTlvIsVerified) {
  Bytes header = v2(0x21, 0x11, concat(concat(tcp4Block(), tlv(kPp2TypeCrc32c, {0, 0, 0, 0})), tlv(kPp2TypeAlpn, bytes("h2"))));
  uint32_t crc = proxyCrc32c(header);  // computed with the field zero, as section 2.2.3 says
  size_t at = 16 + 12 + 3;
  header[at] = static_cast<uint8_t>(crc >> 24);
  header[at + 1] = static_cast<uint8_t>(crc >> 16);
  header[at + 2] = static_cast<uint8_t>(crc >> 8);
  header[at + 3] = static_cast<uint8_t>(crc);
  ProxyHeader h = parseComplete(header, header.size());
  EXPECT_EQ(h.alpn, "h2");
  header.back() ^= 1;  // "h3": payload changed under the checksum
  EXPECT_EQ(parseError(header), ProxyParseError::V2BadCrc32c);
  EXPECT_EQ(parseError(v2(0x21, 0x11, concat(tcp4Block(), tlv(kPp2TypeCrc32c, {0, 0, 0})))), ProxyParseError::V2BadCrc32c);
}

// ---- incremental feeding ----

struct FedResult {
  ProxyParseResult result;
  ProxyHeader header;
  size_t fed = 0;
};

// Feeds `data` one byte at a time, asserting NeedMore (with a bytes_needed beyond what it
// had) until the first other answer.
FedResult feedByteByByte(const Bytes& data, ProxyVersionAccepted accepted = ProxyVersionAccepted::Any) {
  FedResult out;
  for (size_t n = 0; n <= data.size(); ++n) {
    Bytes prefix(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    out.result = parseProxyHeader(prefix, accepted, out.header);
    out.fed = n;
    if (out.result.status != ProxyParseStatus::NeedMore) return out;
    EXPECT_GT(out.result.bytes_needed, n);
  }
  return out;
}

TEST(ProxyIncrementalTest, ByteByByteGivesNeedMoreUntilCompleteAndTheSameHeader) {
  Bytes ssl = concat(Bytes{1, 0, 0, 0, 0}, tlv(kPp2SubtypeSslVersion, bytes("TLSv1.2")));
  std::vector<Bytes> headers = {
      bytes("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
      bytes("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"),
      bytes("PROXY UNKNOWN\r\n"),
      v2(0x21, 0x11, concat(concat(tcp4Block(), tlv(kPp2TypeAuthority, bytes("example.com"))), tlv(kPp2TypeSsl, ssl))),
      v2(0x20, 0x00, {}),
      v2(0x21, 0x31, Bytes(216, 'u')),
  };
  for (const Bytes& header : headers) {
    Bytes stream = concat(header, bytes("client data"));
    ProxyHeader whole;
    ProxyParseResult expected = parseProxyHeader(stream, ProxyVersionAccepted::Any, whole);
    ASSERT_EQ(expected.status, ProxyParseStatus::Complete);
    FedResult fed = feedByteByByte(stream);
    EXPECT_EQ(fed.result.status, ProxyParseStatus::Complete);
    EXPECT_EQ(fed.fed, header.size());
    EXPECT_EQ(fed.result.consumed, header.size());
    EXPECT_EQ(fed.header.source.toString(), whole.source.toString());
    EXPECT_EQ(fed.header.destination.toString(), whole.destination.toString());
    EXPECT_EQ(fed.header.has_addresses, whole.has_addresses);
    EXPECT_EQ(fed.header.ssl.version, whole.ssl.version);
  }
}

TEST(ProxyIncrementalTest, ByteByByteReachesTheSameErrorAsTheWholeInput) {
  std::vector<Bytes> bad = {
      bytes("PROXY TCP4 1.2.3.04 1.2.3.4 1 2\r\n"), bytes("PROXY UNKNOWN\n"), bytes("GET / HTTP/1.1\r\n"),
      bytes(std::string("PROXY UNKNOWN ") + std::string(200, 'x')),
      v2(0x21, 0x11, {}, 5000), v2(0x22, 0x11, tcp4Block()), v2(0x21, 0x11, concat(tcp4Block(), {0x01, 0x00, 0x09})),
  };
  for (const Bytes& data : bad) {
    ProxyHeader h;
    ProxyParseResult whole = parseProxyHeader(data, ProxyVersionAccepted::Any, h);
    ASSERT_EQ(whole.status, ProxyParseStatus::Invalid);
    FedResult fed = feedByteByByte(data);
    EXPECT_EQ(fed.result.status, ProxyParseStatus::Invalid);
    EXPECT_EQ(fed.result.error, whole.error) << proxyParseErrorName(whole.error);
  }
}

TEST(ProxyIncrementalTest, NeedMoreLeavesOutEmptyAndCompleteNeverCountsClientBytes) {
  Bytes header = v2(0x21, 0x11, tcp4Block());
  ProxyHeader h = parseComplete(header, header.size());
  ASSERT_TRUE(h.has_addresses);
  Bytes partial(header.begin(), header.end() - 1);
  ProxyParseResult r = parse(partial, h);
  EXPECT_EQ(r.status, ProxyParseStatus::NeedMore);
  EXPECT_EQ(r.bytes_needed, header.size());
  EXPECT_FALSE(h.has_addresses);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(ProxyParseErrorTest, EveryErrorHasADistinctName) {
  std::vector<std::string_view> names;
  for (int e = 0; e <= static_cast<int>(ProxyParseError::V2BadCrc32c); ++e) {
    std::string_view name = proxyParseErrorName(static_cast<ProxyParseError>(e));
    EXPECT_NE(name, "unknown");
    for (std::string_view other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
}

}  // namespace
}  // namespace ringlb::balancer
