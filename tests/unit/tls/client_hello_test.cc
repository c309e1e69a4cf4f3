// parseClientHello on real OpenSSL hellos: every field cross-checked against OpenSSL's own
// view, then the incremental contract (truncation, re-framing into records, bytes_needed),
// big hellos and resumption hellos.
#include "tls/client_hello.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/tls/client_hello_test_util.h"
#include "tests/unit/tls/tls_test_support.h"

namespace ringlb::tls {
namespace {

using namespace test_support;  // NOLINT: test helpers only

// ---- cross-check with OpenSSL ----

void expectMatchesOpenSsl(const Bytes& hello, const Snapshot& ours, bool compare_count = true) {
  const OpenSslView view = openSslView(hello);
  ASSERT_TRUE(view.parsed) << "OpenSSL did not reach its client_hello callback";
  EXPECT_EQ(ours.legacy_version, view.legacy_version);
  EXPECT_EQ(ours.random, view.random);
  EXPECT_EQ(ours.session_id, view.session_id);
  EXPECT_EQ(ours.ciphers, view.ciphers);
  if (compare_count) {
    EXPECT_EQ(ours.extension_count, view.extension_types.size());
  }

  // server_name (RFC 6066 s3): list length, name_type, name length, name.
  ASSERT_EQ(ours.has_sni, view.server_name.has);
  if (view.server_name.has) {
    const Bytes& d = view.server_name.data;
    ASSERT_GE(d.size(), 5u);
    EXPECT_EQ(d[2], 0) << "host_name";
    EXPECT_EQ(ours.sni, std::string(d.begin() + 5, d.begin() + 5 + u16At(d, 3)));
  }
  // ALPN (RFC 7301 s3.1): list length, then u8-prefixed names.
  ASSERT_EQ(ours.has_alpn, view.alpn.has);
  if (view.alpn.has) {
    std::vector<std::string> names;
    const Bytes& d = view.alpn.data;
    for (size_t pos = 2; pos < d.size(); pos += 1 + d[pos]) {
      names.emplace_back(d.begin() + static_cast<long>(pos + 1),
                         d.begin() + static_cast<long>(pos + 1 + d[pos]));
    }
    EXPECT_EQ(ours.alpn, names);
  }
  // supported_versions (RFC 8446 s4.2.1): u8 length, then the list.
  ASSERT_EQ(ours.has_supported_versions, view.supported_versions.has);
  if (view.supported_versions.has) {
    EXPECT_EQ(ours.supported_versions,
              Bytes(view.supported_versions.data.begin() + 1, view.supported_versions.data.end()));
  }
  ASSERT_EQ(ours.has_session_ticket, view.session_ticket.has);
  EXPECT_EQ(ours.session_ticket, view.session_ticket.data);
  // pre_shared_key (RFC 8446 s4.2.11): identities<..>, each u16 identity + u32 age.
  ASSERT_EQ(ours.has_psk, view.pre_shared_key.has);
  if (view.pre_shared_key.has) {
    const Bytes& d = view.pre_shared_key.data;
    std::vector<std::string> identities;
    const size_t end = 2 + u16At(d, 0);
    for (size_t pos = 2; pos < end; pos += 2 + u16At(d, pos) + 4) {
      identities.emplace_back(d.begin() + static_cast<long>(pos + 2),
                              d.begin() + static_cast<long>(pos + 2 + u16At(d, pos)));
    }
    EXPECT_EQ(ours.psk_identities, identities);
  }
}

// ---- incremental-contract properties, reused for every hello ----

void expectEveryTruncationNeedsMore(const Bytes& stream, ParseLimits limits = {}) {
  for (size_t size = 0; size < stream.size(); ++size) {
    const Snapshot s = parsePrefix(stream, size, limits);
    ASSERT_EQ(s.status, ParseStatus::NeedMore) << "truncated at " << size << ": " << s;
    ASSERT_GT(s.bytes_needed, size);
    ASSERT_LE(s.bytes_needed, stream.size());
  }
}

// A caller that re-parses only once input.size() >= bytes_needed reaches the same result as
// parsing everything at once, in at most O(records) calls; below bytes_needed the answer is
// always NeedMore, and never with a smaller bytes_needed. Returns the number of calls.
size_t expectBytesNeededHonoured(const Bytes& stream, size_t records, uint32_t seed) {
  std::mt19937 rng(seed);
  const Snapshot whole = parse(stream);
  EXPECT_EQ(whole.status, ParseStatus::Complete);
  size_t size = 0;
  size_t calls = 0;
  while (calls <= 2 * records + 2) {
    const Snapshot s = parsePrefix(stream, size);
    ++calls;
    if (s.status == ParseStatus::Complete) {
      EXPECT_EQ(size, stream.size());
      EXPECT_EQ(s, whole);
      break;
    }
    EXPECT_EQ(s.status, ParseStatus::NeedMore) << "at " << size;
    EXPECT_GT(s.bytes_needed, size);
    if (s.status != ParseStatus::NeedMore || s.bytes_needed <= size) break;
    std::uniform_int_distribution<size_t> below(size, s.bytes_needed - 1);
    for (size_t shorter : {below(rng), s.bytes_needed - 1}) {
      const Snapshot t = parsePrefix(stream, shorter);
      EXPECT_EQ(t.status, ParseStatus::NeedMore) << "at " << shorter;
      EXPECT_GE(t.bytes_needed, s.bytes_needed) << "at " << shorter;
    }
    size = s.bytes_needed;
  }
  EXPECT_LE(calls, 2 * records + 2);
  return calls;
}


// ---- real hellos from OpenSSL ----

struct HelloCase {
  const char* name;
  int max_version;
  const char* sni;
  std::vector<std::string> alpn;
};

const HelloCase kHelloCases[] = {
    {"Tls12", TLS1_2_VERSION, "", {}},
    {"Tls12Sni", TLS1_2_VERSION, "backend.example.com", {}},
    {"Tls12Alpn", TLS1_2_VERSION, "", {"h2", "http/1.1"}},
    {"Tls12SniAlpn", TLS1_2_VERSION, "api.example.net", {"http/1.1"}},
    {"Tls13", TLS1_3_VERSION, "", {}},
    {"Tls13Sni", TLS1_3_VERSION, "backend.example.com", {}},
    {"Tls13Alpn", TLS1_3_VERSION, "", {"h2", "http/1.1"}},
    {"Tls13SniAlpn", TLS1_3_VERSION, "xn--caf-dma.example", {"h2", "http/1.1", "acme-tls/1"}},
};

class RealHelloTest : public ::testing::TestWithParam<HelloCase> {
 protected:
  static Bytes hello() {
    const HelloCase& c = GetParam();
    ClientOptions options;
    options.max_version = c.max_version;
    options.sni = c.sni;
    options.alpn = c.alpn;
    return makeClientHello(options);
  }
};

TEST_P(RealHelloTest, MatchesOpenSslView) {
  const Bytes h = hello();
  const Snapshot s = parse(h);
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  EXPECT_EQ(s.hello_record_bytes, h.size());
  EXPECT_EQ(s.sni, GetParam().sni);
  EXPECT_EQ(s.alpn, GetParam().alpn);
  EXPECT_EQ(s.max_offered_version, GetParam().max_version == TLS1_3_VERSION ? 0x0304 : 0x0303);
  expectMatchesOpenSsl(h, s);
}

TEST_P(RealHelloTest, EveryTruncationNeedsMore) { expectEveryTruncationNeedsMore(hello()); }

TEST_P(RealHelloTest, BytesNeededIsHonoured) {
  const Bytes h = hello();
  expectBytesNeededHonoured(h, 1, 1);
  const Bytes split = rechunk(h, {7, 1, 3, 100, 2});
  expectBytesNeededHonoured(split, countRecords(split), 2);
}

TEST_P(RealHelloTest, OneByteRecordsNeedOnlyLogarithmicallyManyReparses) {
  // Each re-parse walks every record header so far; a caller following bytes_needed must not
  // re-parse once per record, or a client fragmenting into 1-byte records costs O(records^2).
  const Bytes split = rechunk(hello(), {1});
  const size_t records = countRecords(split);
  const size_t calls = expectBytesNeededHonoured(split, records, 3);
  EXPECT_LE(calls, 60u) << records << " records";
}

TEST_P(RealHelloTest, RandomRecordSplitsParseTheSame) {
  const Bytes h = hello();
  const Snapshot whole = parse(h);
  std::mt19937 rng(0x5eed);
  for (size_t max_fragment : {1u, 2u, 5u, 17u, 64u, 300u}) {
    for (int round = 0; round < 8; ++round) {
      const Bytes split = rechunk(h, randomSizes(rng, max_fragment));
      const Snapshot s = parse(split);
      ASSERT_EQ(s.status, ParseStatus::Complete) << "max fragment " << max_fragment;
      EXPECT_EQ(s.hello_record_bytes, split.size());
      EXPECT_EQ(unframed(s), unframed(whole));
    }
  }
}

TEST_P(RealHelloTest, OneByteRecordsParseTheSameAndEveryTruncationNeedsMore) {
  const Bytes h = hello();
  const Bytes split = rechunk(h, {1});
  ASSERT_EQ(countRecords(split), h.size() - 5);
  const Snapshot s = parse(split);
  ASSERT_EQ(s.status, ParseStatus::Complete);
  EXPECT_EQ(unframed(s), unframed(parse(h)));
  expectEveryTruncationNeedsMore(split);
}

TEST_P(RealHelloTest, ViewsPointIntoInputForOneRecordAndIntoScratchOtherwise) {
  const Bytes h = hello();
  std::vector<uint8_t> scratch(ParseLimits{}.max_hello_bytes);
  ClientHelloInfo info;
  ASSERT_EQ(parseClientHello(h, scratch, {}, info), ParseStatus::Complete);
  EXPECT_GE(info.random.data(), h.data());
  EXPECT_LT(info.random.data(), h.data() + h.size());
  const Bytes split = rechunk(h, {50});
  ASSERT_EQ(parseClientHello(split, scratch, {}, info), ParseStatus::Complete);
  EXPECT_GE(info.random.data(), scratch.data());
  EXPECT_LT(info.random.data(), scratch.data() + scratch.size());
}

INSTANTIATE_TEST_SUITE_P(OpenSsl, RealHelloTest, ::testing::ValuesIn(kHelloCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ClientHelloTest, SniCaseIsPreservedAsSent) {
  ClientOptions options;
  options.sni = "WwW.ExAmPlE.CoM";
  const Bytes h = makeClientHello(options);
  const Snapshot s = parse(h);
  ASSERT_EQ(s.status, ParseStatus::Complete);
  EXPECT_EQ(s.sni, "WwW.ExAmPlE.CoM");
  expectMatchesOpenSsl(h, s);
}

TEST(ClientHelloTest, PostQuantumSizeHelloParses) {
  ClientOptions options;
  options.sni = "pq.example.com";
  options.extra_extension_bytes = 8000;  // an ML-KEM-sized key_share and then some
  const Bytes h = makeClientHello(options);
  ASSERT_GT(h.size(), 8000u);
  const Snapshot s = parse(h);
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  EXPECT_EQ(s.sni, "pq.example.com");
  expectMatchesOpenSsl(h, s, /*compare_count=*/false);  // OpenSSL does not count unknown types
  expectEveryTruncationNeedsMore(h);
  std::mt19937 rng(8);
  const Bytes split = rechunk(h, randomSizes(rng, 1500));
  EXPECT_EQ(unframed(parse(split)), unframed(s));
  expectEveryTruncationNeedsMore(split);
}

TEST(ClientHelloTest, HelloOverTheCapIsTooLargeAsSoonAsItsLengthIsKnown) {
  ClientOptions options;
  options.extra_extension_bytes = 17000;  // OpenSSL itself splits this over two records
  const Bytes h = makeClientHello(options);
  ASSERT_GE(countRecords(h), 2u);
  EXPECT_EQ(parse(h).error, ParseError::HelloTooLarge);
  EXPECT_EQ(parsePrefix(h, 9).error, ParseError::HelloTooLarge);  // record + handshake header
  EXPECT_EQ(parsePrefix(h, 8).status, ParseStatus::NeedMore);
  // Under a large enough cap the same hello is fine.
  const Snapshot big = parse(h, ParseLimits{.max_hello_bytes = 32 * 1024});
  ASSERT_EQ(big.status, ParseStatus::Complete) << big;
  expectMatchesOpenSsl(h, big, /*compare_count=*/false);
  // A tighter cap applies to ordinary hellos too.
  ClientOptions pq;
  pq.extra_extension_bytes = 8000;
  EXPECT_EQ(parse(makeClientHello(pq), ParseLimits{.max_hello_bytes = 4096}).error,
            ParseError::HelloTooLarge);
}

TEST(ClientHelloTest, ScratchSmallerThanTheHelloIsNeverOverrun) {
  const Bytes split = rechunk(makeClientHello({}), {40});
  std::vector<uint8_t> small(64);
  ClientHelloInfo info;
  EXPECT_EQ(parseClientHello(split, small, {}, info), ParseStatus::Invalid);
  EXPECT_EQ(info.error, ParseError::HelloTooLarge);
}

TEST(ClientHelloTest, Tls13ResumptionPskIdentitiesMatchOpenSsl) {
  SslCtxPtr server = makeServerCtx({});
  ClientOptions options;
  options.sni = "resume.example.com";
  SslCtxPtr client = makeClientCtx(options);
  Handshake first = runHandshake(client.get(), options, server.get());
  ASSERT_TRUE(first.ok);
  ASSERT_NE(first.client_session, nullptr);
  options.session = first.client_session.get();
  const Bytes h = makeClientHello(options);
  const Snapshot s = parse(h);
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  ASSERT_TRUE(s.has_psk);
  ASSERT_EQ(s.psk_identities.size(), 1u);
  const unsigned char* ticket = nullptr;
  size_t ticket_len = 0;
  SSL_SESSION_get0_ticket(first.client_session.get(), &ticket, &ticket_len);
  EXPECT_EQ(s.psk_identities[0], std::string(reinterpret_cast<const char*>(ticket), ticket_len));
  expectMatchesOpenSsl(h, s);
}

TEST(ClientHelloTest, HelloFollowedByOtherRecordsReportsOnlyItsOwnRecords) {
  Bytes h = makeClientHello({});
  const size_t hello_size = h.size();
  // TLS 1.3 middlebox-compatibility ChangeCipherSpec and an early-data record may follow.
  h.insert(h.end(), {0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb});
  const Snapshot s = parse(h);
  ASSERT_EQ(s.status, ParseStatus::Complete);
  EXPECT_EQ(s.hello_record_bytes, hello_size);
}

}  // namespace
}  // namespace ringlb::tls
