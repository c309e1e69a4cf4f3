// parseClientHello strictness: every ParseError from hand-built hellos, and the edge cases
// just inside the rules (255-byte names, no extensions block, GREASE, many extensions).
#include "tls/client_hello.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/unit/tls/client_hello_test_util.h"
#include "tests/unit/tls/tls_test_support.h"

namespace ringlb::tls {
namespace {

using namespace test_support;  // NOLINT: test helpers only

// ---- synthetic hellos for the strictness rules ----

Bytes u16(size_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes str(std::string_view s) { return Bytes(s.begin(), s.end()); }
Bytes vec8(const Bytes& b) { return cat({{static_cast<uint8_t>(b.size())}, b}); }
Bytes vec16(const Bytes& b) { return cat({u16(b.size()), b}); }

Bytes hostEntry(std::string_view name, uint8_t type = 0) { return cat({{type}, vec16(str(name))}); }
Bytes sniExt(std::initializer_list<Bytes> entries) { return vec16(cat(entries)); }
Bytes alpnExt(std::initializer_list<std::string_view> names) {
  Bytes list;
  for (auto n : names) list = cat({list, vec8(str(n))});
  return vec16(list);
}
Bytes pskIdentity(std::string_view id) { return cat({vec16(str(id)), {0, 0, 0, 1}}); }
Bytes pskBinder(size_t n) { return vec8(Bytes(n, 0xbb)); }

struct HelloBuilder {
  uint16_t legacy_version = 0x0303;
  Bytes random = Bytes(32, 0x11);
  Bytes session_id = Bytes(32, 0x22);
  Bytes ciphers = {0x13, 0x01, 0xc0, 0x2f};
  Bytes compression = {0};
  bool with_extensions = true;
  std::vector<std::pair<uint16_t, Bytes>> extensions = {
      {0, sniExt({hostEntry("example.com")})},
      {16, alpnExt({"h2", "http/1.1"})},
      {43, vec8({0x03, 0x04, 0x03, 0x03})},
  };
  Bytes trailing;  // appended after the extensions, inside the body

  Bytes body() const {
    Bytes ext_block;
    for (const auto& [type, data] : extensions) ext_block = cat({ext_block, u16(type), vec16(data)});
    Bytes b = cat({u16(legacy_version), random, vec8(session_id), vec16(ciphers), vec8(compression)});
    if (with_extensions) b = cat({b, vec16(ext_block)});
    return cat({b, trailing});
  }
  Bytes handshake(uint8_t type = 1) const {
    const Bytes b = body();
    return cat({{type, 0, static_cast<uint8_t>(b.size() >> 8), static_cast<uint8_t>(b.size())}, b});
  }
  Bytes record() const { return recordOf(handshake()); }
  static Bytes recordOf(const Bytes& payload, uint8_t type = 0x16) {
    return cat({{type, 0x03, 0x01}, u16(payload.size()), payload});
  }
};

ParseError errorOf(const Bytes& stream) {
  const Snapshot s = parse(stream);
  EXPECT_EQ(s.status, s.error == ParseError::None ? ParseStatus::Complete : ParseStatus::Invalid);
  return s.error;
}

HelloBuilder withExtension(uint16_t type, Bytes data) {
  HelloBuilder b;
  b.extensions.emplace_back(type, std::move(data));
  return b;
}
HelloBuilder withSni(Bytes data) {
  HelloBuilder b;
  b.extensions[0].second = std::move(data);
  return b;
}

TEST(ClientHelloTest, SyntheticBaselineIsCompleteAndEquallyValidInOneByteRecords) {
  const HelloBuilder b;
  const Snapshot s = parse(b.record());
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  EXPECT_EQ(s.sni, "example.com");
  EXPECT_EQ(s.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(s.extension_count, 3);
  EXPECT_EQ(unframed(parse(rechunk(b.record(), {1}))), unframed(s));
}

TEST(ClientHelloTest, FirstByteOtherThanHandshakeIsNotTls) {
  EXPECT_EQ(errorOf(str("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), ParseError::NotTls);
  EXPECT_EQ(errorOf(str("G")), ParseError::NotTls);  // known from the very first byte
  EXPECT_EQ(errorOf({0x80, 0x2e, 0x01, 0x00, 0x02}), ParseError::NotTls);  // SSLv2-style hello
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(HelloBuilder{}.handshake(), 0x17)), ParseError::NotTls);
}

TEST(ClientHelloTest, EmptyInputNeedsOneByte) {
  const Snapshot s = parse({});
  EXPECT_EQ(s.status, ParseStatus::NeedMore);
  EXPECT_EQ(s.bytes_needed, 1u);
}

TEST(ClientHelloTest, RecordLayerViolationsAreInvalid) {
  Bytes bad_version = HelloBuilder{}.record();
  bad_version[1] = 0x02;
  EXPECT_EQ(errorOf(bad_version), ParseError::BadRecordVersion);
  EXPECT_EQ(errorOf({0x16, 0x02}), ParseError::BadRecordVersion);
  EXPECT_EQ(errorOf({0x16, 0x03, 0x01, 0x00, 0x00}), ParseError::BadRecordLength);
  EXPECT_EQ(errorOf({0x16, 0x03, 0x01, 0x40, 0x01}), ParseError::BadRecordLength);  // 2^14 + 1
  // A maximum-size record is fine as far as the record layer goes.
  EXPECT_EQ(parse({0x16, 0x03, 0x01, 0x40, 0x00}).status, ParseStatus::NeedMore);
}

TEST(ClientHelloTest, NonHandshakeRecordBeforeTheHelloCompletesIsInvalid) {
  const Bytes split = rechunk(HelloBuilder{}.record(), {20});
  for (uint8_t type : {uint8_t{0x14}, uint8_t{0x15}, uint8_t{0x17}, uint8_t{0x18}}) {
    Bytes changed = split;
    changed[5 + 20] = type;  // second record header
    EXPECT_EQ(errorOf(changed), ParseError::RecordTypeChanged) << int{type};
    // Known from the header's first byte, before the rest arrives.
    EXPECT_EQ(parsePrefix(changed, 26).error, ParseError::RecordTypeChanged);
  }
}

TEST(ClientHelloTest, HandshakeHeaderViolationsAreInvalid) {
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(HelloBuilder{}.handshake(2))), ParseError::NotClientHello);
  // Known from the first handshake byte, even inside a 1-byte record.
  EXPECT_EQ(errorOf({0x16, 0x03, 0x01, 0x00, 0x01, 0x02}), ParseError::NotClientHello);
  // A declared length over the cap is rejected from the header alone.
  EXPECT_EQ(errorOf({0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x00}),
            ParseError::HelloTooLarge);
  // Exactly at the cap (4 + 16380 bytes) it is still worth waiting for.
  EXPECT_EQ(parse({0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x3f, 0xfc}).status,
            ParseStatus::NeedMore);
}

TEST(ClientHelloTest, NeedMoreLooksOnlyAtHeaders) {
  // A garbage body is not judged until its record is complete.
  // Built in place: growing a 9-byte vector makes GCC 12 -O2 report a false -Warray-bounds.
  Bytes partial(9 + 100, 0xff);
  const uint8_t header[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc};
  std::copy(std::begin(header), std::end(header), partial.begin());
  const Snapshot s = parse(partial);
  EXPECT_EQ(s.status, ParseStatus::NeedMore);
  EXPECT_EQ(s.bytes_needed, 5u + 256u);
}

TEST(ClientHelloTest, BytesNeededCountsEveryMissingHelloByteOnceTheLengthIsKnown) {
  // A 1000-byte hello whose first record carries 100 bytes: complete at the earliest after
  // that record, one more header and the other 900 bytes.
  Bytes first = {0x16, 0x03, 0x01, 0x00, 0x64, 0x01, 0x00, 0x03, 0xe4};
  first.resize(5 + 100, 0x00);
  EXPECT_EQ(parse(first).bytes_needed, 5u + 100u + 5u + 900u);
  EXPECT_EQ(parsePrefix(first, 50).bytes_needed, 5u + 100u + 5u + 900u);
  // Before the handshake length is known, only the next header is promised.
  EXPECT_EQ(parse({0x16, 0x03, 0x01, 0x00, 0x01, 0x01}).bytes_needed, 11u);
}

TEST(ClientHelloTest, BytesAfterTheHelloInItsRecordsAreTrailingData) {
  Bytes in_record = HelloBuilder{}.handshake();
  in_record.insert(in_record.end(), {0x0b, 0x00, 0x00, 0x00});  // another handshake message
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(in_record)), ParseError::TrailingHandshakeData);
  // Across records it is seen from the header of the record that overshoots.
  const Bytes split = rechunk(HelloBuilder::recordOf(in_record), {50});
  EXPECT_EQ(errorOf(split), ParseError::TrailingHandshakeData);
  EXPECT_EQ(parsePrefix(split, split.size() - 1).error, ParseError::TrailingHandshakeData);
}

TEST(ClientHelloTest, BodyLengthsThatDisagreeWithTheirContainerAreBadLength) {
  HelloBuilder trailing;
  trailing.trailing = {0x00};
  EXPECT_EQ(errorOf(trailing.record()), ParseError::BadLength);
  // Body ending inside the random, and inside the session ID.
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(cat({{1, 0, 0, 22}, u16(0x0303), Bytes(20, 0x11)}))),
            ParseError::BadLength);
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(cat({{1, 0, 0, 37}, u16(0x0303), Bytes(32, 0x11),
                                                {0x20, 0x22, 0x22}}))),
            ParseError::BadLength);
  // Extension data longer than the extension block.
  Bytes h = HelloBuilder{}.handshake();
  h[h.size() - 6] = 0x7f;  // supported_versions' u16 extension length
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(h)), ParseError::BadLength);
  // An extension block with a lone byte after the last extension.
  HelloBuilder odd;
  odd.extensions.clear();
  Bytes body = odd.body();
  body.back() = 1;  // extensions length 1 ...
  body.push_back(0);  // ... and one byte, too short for a header
  const Bytes hs = cat({{1, 0, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())}, body});
  EXPECT_EQ(errorOf(HelloBuilder::recordOf(hs)), ParseError::BadLength);
}

TEST(ClientHelloTest, FixedFieldViolationsHaveTheirOwnErrors) {
  HelloBuilder sid;
  sid.session_id.resize(33);
  EXPECT_EQ(errorOf(sid.record()), ParseError::BadSessionId);
  HelloBuilder no_ciphers;
  no_ciphers.ciphers.clear();
  EXPECT_EQ(errorOf(no_ciphers.record()), ParseError::BadCipherSuites);
  HelloBuilder odd_ciphers;
  odd_ciphers.ciphers = {0x13, 0x01, 0x13};
  EXPECT_EQ(errorOf(odd_ciphers.record()), ParseError::BadCipherSuites);
  HelloBuilder no_compression;
  no_compression.compression.clear();
  EXPECT_EQ(errorOf(no_compression.record()), ParseError::BadCompression);
}

TEST(ClientHelloTest, HelloWithoutExtensionsIsComplete) {
  HelloBuilder none;
  none.with_extensions = false;  // RFC 5246 s7.4.1.2 allows the field to be absent
  const Snapshot s = parse(none.record());
  ASSERT_EQ(s.status, ParseStatus::Complete);
  EXPECT_EQ(s.extension_count, 0);
  EXPECT_FALSE(s.has_sni);
  EXPECT_EQ(s.max_offered_version, 0x0303);
  HelloBuilder empty_block;
  empty_block.extensions.clear();
  EXPECT_EQ(parse(empty_block.record()).status, ParseStatus::Complete);
}

TEST(ClientHelloTest, AnyDuplicateExtensionIsInvalid) {
  EXPECT_EQ(errorOf(withExtension(0, sniExt({hostEntry("other.example")})).record()),
            ParseError::DuplicateExtension);
  HelloBuilder unknown;
  unknown.extensions.emplace_back(0x1234, Bytes{});
  unknown.extensions.emplace_back(0x1234, Bytes{1});
  EXPECT_EQ(errorOf(unknown.record()), ParseError::DuplicateExtension);
  HelloBuilder grease;
  grease.extensions.emplace_back(0x0a0a, Bytes{});
  grease.extensions.emplace_back(0x0a0a, Bytes{});
  EXPECT_EQ(errorOf(grease.record()), ParseError::DuplicateExtension);
}

TEST(ClientHelloTest, ManyDistinctExtensionsAreFineAndADuplicateAmongThemIsNot) {
  // More extensions than the small set holds exercises the bitmap path.
  HelloBuilder many;
  for (uint16_t t = 0; t < 300; ++t) many.extensions.emplace_back(static_cast<uint16_t>(0x1000 + t * 7), Bytes{});
  const Snapshot s = parse(many.record());
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  EXPECT_EQ(s.extension_count, 303);
  for (uint16_t dup : {uint16_t{0}, uint16_t{43}, uint16_t{0x1000}, uint16_t{0x1000 + 299 * 7}}) {
    HelloBuilder with_dup = many;
    with_dup.extensions.emplace_back(dup, Bytes{});
    EXPECT_EQ(errorOf(with_dup.record()), ParseError::DuplicateExtension) << dup;
  }
}

TEST(ClientHelloTest, MalformedServerNameExtensionIsBadServerName) {
  EXPECT_EQ(errorOf(withSni({}).record()), ParseError::BadServerName);          // no list
  EXPECT_EQ(errorOf(withSni(vec16({})).record()), ParseError::BadServerName);   // empty list
  EXPECT_EQ(errorOf(withSni(cat({sniExt({hostEntry("a.example")}), {0}})).record()),
            ParseError::BadServerName);  // list shorter than the extension
  EXPECT_EQ(errorOf(withSni(sniExt({hostEntry("a.example", 1)})).record()),
            ParseError::BadServerName);  // name_type other than host_name
  EXPECT_EQ(errorOf(withSni(sniExt({cat({{0}, u16(20), str("short")})})).record()),
            ParseError::BadServerName);  // name longer than the list
  EXPECT_EQ(errorOf(withSni(sniExt({cat({hostEntry("a.example"), {0, 0}})})).record()),
            ParseError::BadServerName);  // garbage after the entry
}

TEST(ClientHelloTest, MoreThanOneServerNameIsInvalid) {
  EXPECT_EQ(errorOf(withSni(sniExt({hostEntry("a.example"), hostEntry("b.example")})).record()),
            ParseError::MultipleServerNames);
  EXPECT_EQ(errorOf(withSni(sniExt({hostEntry("a.example"), hostEntry("a.example", 1)})).record()),
            ParseError::MultipleServerNames);
}

TEST(ClientHelloTest, HostNameMustBeOneTo255PrintableAsciiBytes) {
  const std::string max_len(255, 'a');
  const Snapshot ok = parse(withSni(sniExt({hostEntry(max_len)})).record());
  ASSERT_EQ(ok.status, ParseStatus::Complete);
  EXPECT_EQ(ok.sni, max_len);
  const std::string bad[] = {
      "", std::string(256, 'a'), std::string("a\0b.example", 11), "a b.example",
      "a\x7f.example", "caf\xc3\xa9.example", "\x01.example", "tab\t.example", "end\n"};
  for (const auto& name : bad) {
    EXPECT_EQ(errorOf(withSni(sniExt({hostEntry(name)})).record()), ParseError::BadHostName)
        << ::testing::PrintToString(name);
  }
}

TEST(ClientHelloTest, MalformedAlpnIsBadAlpn) {
  EXPECT_EQ(errorOf(withExtension(16, {}).record()), ParseError::DuplicateExtension);  // sanity
  auto alpn = [](Bytes data) {
    HelloBuilder b;
    b.extensions[1].second = std::move(data);
    return errorOf(b.record());
  };
  EXPECT_EQ(alpn({}), ParseError::BadAlpn);
  EXPECT_EQ(alpn({0}), ParseError::BadAlpn);
  EXPECT_EQ(alpn(vec16({})), ParseError::BadAlpn);                          // empty list
  EXPECT_EQ(alpn(vec16({0x00, 0x02, 'h', '2'})), ParseError::BadAlpn);     // empty name
  EXPECT_EQ(alpn(vec16({0x03, 'h', '2'})), ParseError::BadAlpn);           // name past list
  EXPECT_EQ(alpn(cat({alpnExt({"h2"}), {0}})), ParseError::BadAlpn);       // list short of ext
  EXPECT_EQ(alpn(alpnExt({"h2"})), ParseError::None);
}

TEST(ClientHelloTest, MalformedSupportedVersionsIsInvalid) {
  auto versions = [](Bytes data) {
    HelloBuilder b;
    b.extensions[2].second = std::move(data);
    return errorOf(b.record());
  };
  EXPECT_EQ(versions({}), ParseError::BadSupportedVersions);
  EXPECT_EQ(versions(vec8({})), ParseError::BadSupportedVersions);
  EXPECT_EQ(versions(vec8({0x03, 0x04, 0x03})), ParseError::BadSupportedVersions);
  EXPECT_EQ(versions({0x04, 0x03, 0x04}), ParseError::BadSupportedVersions);  // list past ext
  EXPECT_EQ(versions(cat({vec8({0x03, 0x04}), {0}})), ParseError::BadSupportedVersions);
}

TEST(ClientHelloTest, MaxOfferedVersionIgnoresGrease) {
  auto offered = [](Bytes list) {
    HelloBuilder b;
    b.extensions[2].second = vec8(list);
    const Snapshot s = parse(b.record());
    EXPECT_EQ(s.status, ParseStatus::Complete);
    return s.max_offered_version;
  };
  EXPECT_EQ(offered({0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03}), 0x0304);
  EXPECT_EQ(offered({0x03, 0x03, 0xfa, 0xfa}), 0x0303);
  EXPECT_EQ(offered({0x1a, 0x1a}), 0x0303);  // only GREASE: fall back to legacy_version
  HelloBuilder legacy;
  legacy.extensions.pop_back();
  legacy.legacy_version = 0x0301;
  EXPECT_EQ(parse(legacy.record()).max_offered_version, 0x0301);
}

TEST(ClientHelloTest, SessionTicketExtensionIsReportedVerbatim) {
  const Snapshot empty = parse(withExtension(35, {}).record());
  ASSERT_EQ(empty.status, ParseStatus::Complete);
  EXPECT_TRUE(empty.has_session_ticket);
  EXPECT_TRUE(empty.session_ticket.empty());
  const Bytes ticket(200, 0x42);
  const Snapshot full = parse(withExtension(35, ticket).record());
  EXPECT_EQ(full.session_ticket, ticket);
}

TEST(ClientHelloTest, WellFormedPskListsItsIdentities) {
  const Snapshot s = parse(withExtension(41, cat({vec16(cat({pskIdentity("first"), pskIdentity("second")})),
                                                 vec16(cat({pskBinder(32), pskBinder(48)}))}))
                               .record());
  ASSERT_EQ(s.status, ParseStatus::Complete) << s;
  EXPECT_EQ(s.psk_identities, (std::vector<std::string>{"first", "second"}));
}

TEST(ClientHelloTest, MalformedPreSharedKeyIsInvalid) {
  auto psk = [](Bytes data) { return errorOf(withExtension(41, std::move(data)).record()); };
  const Bytes one_id = vec16(pskIdentity("id"));
  const Bytes one_binder = vec16(pskBinder(32));
  EXPECT_EQ(psk(cat({one_id, one_binder})), ParseError::None);
  EXPECT_EQ(psk(cat({one_id, vec16(cat({pskBinder(32), pskBinder(32)}))})),
            ParseError::BadPreSharedKey);  // two binders, one identity
  EXPECT_EQ(psk(cat({one_id, vec16(pskBinder(31))})), ParseError::BadPreSharedKey);
  EXPECT_EQ(psk(cat({vec16(pskIdentity("")), one_binder})), ParseError::BadPreSharedKey);
  EXPECT_EQ(psk(cat({vec16({0, 2, 'i', 'd', 0, 0}), one_binder})), ParseError::BadPreSharedKey);
  EXPECT_EQ(psk(cat({one_id, one_binder, {0}})), ParseError::BadPreSharedKey);
  EXPECT_EQ(psk(one_id), ParseError::BadPreSharedKey);
  // RFC 8446 s4.2.11: pre_shared_key must be the last extension.
  HelloBuilder not_last = withExtension(41, cat({one_id, one_binder}));
  not_last.extensions.emplace_back(0x1234, Bytes{});
  EXPECT_EQ(errorOf(not_last.record()), ParseError::BadPreSharedKey);
}

TEST(ClientHelloTest, BodyErrorsAreTheSameWhateverTheFraming) {
  HelloBuilder two_names = withSni(sniExt({hostEntry("a.example"), hostEntry("b.example")}));
  HelloBuilder nul = withSni(sniExt({hostEntry(std::string("a\0b", 3))}));
  HelloBuilder dup = withExtension(16, alpnExt({"h2"}));
  for (const HelloBuilder* b : {&two_names, &nul, &dup}) {
    const ParseError whole = errorOf(b->record());
    ASSERT_NE(whole, ParseError::None);
    EXPECT_EQ(errorOf(rechunk(b->record(), {1})), whole);
    EXPECT_EQ(errorOf(rechunk(b->record(), {13, 2})), whole);
  }
}

TEST(ClientHelloTest, EveryErrorHasADistinctStableName) {
  std::vector<std::string_view> names;
  for (int e = 0; e <= static_cast<int>(ParseError::BadPreSharedKey); ++e) {
    const std::string_view name = parseErrorName(static_cast<ParseError>(e));
    EXPECT_NE(name, "unknown");
    for (auto seen : names) EXPECT_NE(seen, name);
    names.push_back(name);
  }
  EXPECT_EQ(parseErrorName(ParseError::NotTls), "not_tls");
}

}  // namespace
}  // namespace ringlb::tls
