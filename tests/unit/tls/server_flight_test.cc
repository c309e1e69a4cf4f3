// ServerFlightObserver over real OpenSSL server flights (fed whole, byte by byte and in random
// splits) and over hand-made malformed ones.
#include "tls/server_flight.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "tests/unit/tls/tls_test_support.h"
#include "tls/client_hello.h"

namespace ringlb::tls {
namespace {

using namespace test_support;  // NOLINT: test helpers only

struct Observed {
  bool done = false;
  bool malformed = false;
  bool saw_server_hello = false;
  uint16_t version = 0;
  Bytes session_id;
  bool has_ticket = false;
  uint64_t ticket_digest = 0;
  size_t observed_bytes = 0;
  bool operator==(const Observed&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Observed& o) {
  return os << "{done=" << o.done << " malformed=" << o.malformed << " sh=" << o.saw_server_hello
            << " version=" << std::hex << o.version << std::dec << " sid#=" << o.session_id.size()
            << " ticket=" << o.has_ticket << " observed=" << o.observed_bytes << "}";
}

Observed result(const ServerFlightObserver& obs) {
  return {obs.done(), obs.malformed(), obs.sawServerHello(), obs.version(),
          Bytes(obs.sessionId().begin(), obs.sessionId().end()), obs.hasTicket(),
          obs.ticketDigest(), obs.observedBytes()};
}

// Feeds `stream` in pieces of the given sizes (cycled); each piece is an exactly-sized heap
// copy so AddressSanitizer sees any read past a chunk.
Observed observe(const Bytes& stream, const std::vector<size_t>& sizes,
                 size_t max_observed = 64 * 1024) {
  ServerFlightObserver obs(max_observed);
  size_t i = 0;
  for (size_t pos = 0; pos < stream.size(); ++i) {
    const size_t n = std::min(sizes[i % sizes.size()], stream.size() - pos);
    const Bytes chunk(stream.begin() + static_cast<long>(pos),
                      stream.begin() + static_cast<long>(pos + n));
    obs.feed(chunk);
    pos += n;
  }
  return result(obs);
}

Observed observeWhole(const Bytes& stream) { return observe(stream, {stream.size() + 1}); }

// The same outcome however the stream is split into feed() calls.
Observed observeAllSplits(const Bytes& stream) {
  const Observed whole = observeWhole(stream);
  EXPECT_EQ(observe(stream, {1}), whole) << "1-byte feeds";
  std::mt19937 rng(0xf1);
  for (size_t max_chunk : {2u, 7u, 64u, 700u}) {
    for (int round = 0; round < 5; ++round) {
      EXPECT_EQ(observe(stream, randomSizes(rng, max_chunk)), whole) << "max chunk " << max_chunk;
    }
  }
  return whole;
}

size_t offsetOfFirstRecord(const Bytes& stream, uint8_t type) {
  for (size_t pos = 0; pos + 5 <= stream.size();) {
    if (stream[pos] == type) return pos;
    pos += 5 + ((size_t{stream[pos + 3]} << 8) | stream[pos + 4]);
  }
  return stream.size();
}

struct Pair {
  SslCtxPtr client;
  SslCtxPtr server;
  ClientOptions options;
};

Pair makePair(int max_version, bool tickets) {
  Pair p;
  p.options.max_version = max_version;
  p.options.sni = "sticky.example.com";
  p.client = makeClientCtx(p.options);
  p.server = makeServerCtx({.max_version = max_version, .tickets = tickets});
  return p;
}

// The resumption ClientHello a client holding `session` would send, parsed by our parser.
struct ResumptionHello {
  Bytes bytes;
  bool parsed = false;
  Bytes session_id;
  bool has_ticket = false;
  Bytes ticket;
};

ResumptionHello resumptionHello(const Pair& p, SSL_SESSION* session) {
  ClientOptions options = p.options;
  options.session = session;
  ResumptionHello r;
  r.bytes = makeClientHello(options);
  std::vector<uint8_t> scratch(ParseLimits{}.max_hello_bytes);
  ClientHelloInfo info;
  r.parsed = parseClientHello(r.bytes, scratch, {}, info) == ParseStatus::Complete;
  r.session_id.assign(info.session_id.begin(), info.session_id.end());
  r.has_ticket = info.has_session_ticket;
  r.ticket.assign(info.session_ticket.begin(), info.session_ticket.end());
  return r;
}

TEST(ServerFlightTest, Tls12SessionCacheTeachesTheSessionIdTheClientResumesWith) {
  Pair p = makePair(TLS1_2_VERSION, /*tickets=*/false);
  Handshake hs = runHandshake(p.client.get(), p.options, p.server.get());
  ASSERT_TRUE(hs.ok);
  const Observed o = observeAllSplits(hs.server_to_client);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_TRUE(o.saw_server_hello);
  EXPECT_EQ(o.version, 0x0303);
  EXPECT_FALSE(o.has_ticket);
  unsigned int sid_len = 0;
  const unsigned char* sid = SSL_SESSION_get_id(hs.client_session.get(), &sid_len);
  ASSERT_GT(sid_len, 0u);
  EXPECT_EQ(o.session_id, Bytes(sid, sid + sid_len));
  // Done at the server's ChangeCipherSpec header, having looked at nothing after it.
  EXPECT_EQ(o.observed_bytes, offsetOfFirstRecord(hs.server_to_client, 20) + 5);

  // The client presents that session ID again, and a resumed server echoes it.
  const ResumptionHello again = resumptionHello(p, hs.client_session.get());
  ASSERT_TRUE(again.parsed);
  EXPECT_EQ(again.session_id, o.session_id);
  ClientOptions resume = p.options;
  resume.session = hs.client_session.get();
  Handshake resumed = runHandshake(p.client.get(), resume, p.server.get());
  ASSERT_TRUE(resumed.ok);
  const Observed r = observeAllSplits(resumed.server_to_client);
  EXPECT_TRUE(r.done);
  EXPECT_FALSE(r.malformed);
  EXPECT_EQ(r.session_id, o.session_id);
}

TEST(ServerFlightTest, Tls12TicketDigestEqualsDigestOfTheTicketInTheResumptionHello) {
  Pair p = makePair(TLS1_2_VERSION, /*tickets=*/true);
  Handshake hs = runHandshake(p.client.get(), p.options, p.server.get());
  ASSERT_TRUE(hs.ok);
  const Observed o = observeAllSplits(hs.server_to_client);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_EQ(o.version, 0x0303);
  ASSERT_TRUE(o.has_ticket);

  const unsigned char* ticket = nullptr;
  size_t ticket_len = 0;
  SSL_SESSION_get0_ticket(hs.client_session.get(), &ticket, &ticket_len);
  ASSERT_GT(ticket_len, 0u);
  EXPECT_EQ(o.ticket_digest, ticketDigest({ticket, ticket_len}));

  const ResumptionHello again = resumptionHello(p, hs.client_session.get());
  ASSERT_TRUE(again.parsed);
  ASSERT_TRUE(again.has_ticket);
  EXPECT_EQ(again.ticket, Bytes(ticket, ticket + ticket_len));
  EXPECT_EQ(ticketDigest(again.ticket), o.ticket_digest);
}

TEST(ServerFlightTest, Tls13IsDoneRightAfterServerHello) {
  Pair p = makePair(TLS1_3_VERSION, /*tickets=*/true);
  Handshake hs = runHandshake(p.client.get(), p.options, p.server.get());
  ASSERT_TRUE(hs.ok);
  const Observed o = observeAllSplits(hs.server_to_client);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_TRUE(o.saw_server_hello);
  EXPECT_EQ(o.version, 0x0304);
  EXPECT_TRUE(o.session_id.empty()) << "a TLS 1.3 session ID is only the client's echo";
  EXPECT_FALSE(o.has_ticket);
  const size_t first_record = 5 + ((size_t{hs.server_to_client[3]} << 8) | hs.server_to_client[4]);
  EXPECT_EQ(o.observed_bytes, first_record);  // the ServerHello record and nothing more
}

TEST(ServerFlightTest, Tls13HelloRetryRequestAlsoEndsInspection) {
  Pair p = makePair(TLS1_3_VERSION, /*tickets=*/true);
  ASSERT_EQ(SSL_CTX_set1_groups_list(p.server.get(), "P-256"), 1);  // client shares X25519
  Handshake hs = runHandshake(p.client.get(), p.options, p.server.get());
  ASSERT_TRUE(hs.ok);
  // RFC 8446 s4.1.3: a HelloRetryRequest is a ServerHello with this special random.
  const Bytes kHrrRandom = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11};
  ASSERT_EQ(Bytes(hs.server_to_client.begin() + 11, hs.server_to_client.begin() + 19), kHrrRandom);
  const Observed o = observeAllSplits(hs.server_to_client);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_EQ(o.version, 0x0304);
}

TEST(ServerFlightTest, TicketDigestIsXxh3OfTheBytes) {
  const Bytes ticket = {1, 2, 3, 4, 5};
  EXPECT_EQ(ticketDigest(ticket), XXH3_64bits(ticket.data(), ticket.size()));
  EXPECT_EQ(ticketDigest({}), XXH3_64bits(nullptr, 0));
}

// ---- hand-made flights ----

Bytes u16(size_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}
Bytes handshake(uint8_t type, const Bytes& body) {
  return cat({{type, static_cast<uint8_t>(body.size() >> 16), static_cast<uint8_t>(body.size() >> 8),
               static_cast<uint8_t>(body.size())},
              body});
}
Bytes record(uint8_t type, const Bytes& payload) { return cat({{type, 3, 3}, u16(payload.size()), payload}); }
Bytes extension(uint16_t type, const Bytes& data) { return cat({u16(type), u16(data.size()), data}); }

Bytes serverHello(uint16_t version, const Bytes& sid, std::optional<Bytes> extensions) {
  Bytes body = cat({u16(version), Bytes(32, 0x33), {static_cast<uint8_t>(sid.size())}, sid,
                    {0xc0, 0x2f}, {0}});
  if (extensions) body = cat({body, u16(extensions->size()), *extensions});
  return handshake(2, body);
}
Bytes ticketMessage(const Bytes& ticket) {
  return handshake(4, cat({{0, 0, 0x1c, 0x20}, u16(ticket.size()), ticket}));
}
const Bytes kCcs = record(20, {1});
const Bytes kSid(32, 0x5a);
const Bytes kRenegInfo = extension(0xff01, {0});

TEST(ServerFlightTest, HandMadeTls12FlightWithTicketSplitAcrossRecords) {
  const Bytes ticket(3000, 0x7e);
  // Certificate-sized filler and a ticket message split over records at odd places.
  const Bytes messages = cat({serverHello(0x0303, kSid, kRenegInfo), handshake(11, Bytes(5000, 0)),
                              handshake(14, {}), ticketMessage(ticket)});
  Bytes flight;
  for (size_t pos = 0; pos < messages.size(); pos += 777) {
    const size_t n = std::min<size_t>(777, messages.size() - pos);
    flight = cat({flight, record(22, Bytes(messages.begin() + static_cast<long>(pos),
                                           messages.begin() + static_cast<long>(pos + n)))});
  }
  flight = cat({flight, kCcs, record(22, Bytes(40, 0xee))});  // encrypted Finished
  const Observed o = observeAllSplits(flight);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_EQ(o.session_id, kSid);
  EXPECT_TRUE(o.has_ticket);
  EXPECT_EQ(o.ticket_digest, ticketDigest(ticket));
  EXPECT_EQ(o.observed_bytes, flight.size() - 45 - 1);  // up to the CCS header
}

TEST(ServerFlightTest, ServerHelloWithoutExtensionsAndEmptyTicketAreFine) {
  const Observed o = observeAllSplits(
      cat({record(22, serverHello(0x0303, {}, std::nullopt)), record(22, ticketMessage({})), kCcs}));
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_EQ(o.version, 0x0303);
  EXPECT_TRUE(o.session_id.empty());
  EXPECT_FALSE(o.has_ticket) << "RFC 5077 s3.3: an empty ticket is no ticket";
}

TEST(ServerFlightTest, AlertRecordsArePassedOver) {
  const Observed o = observeAllSplits(
      cat({record(21, {1, 112}), record(22, serverHello(0x0303, kSid, kRenegInfo)), kCcs}));
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.malformed);
  EXPECT_EQ(o.session_id, kSid);
}

TEST(ServerFlightTest, MalformedFlightsAreMalformedAndDone) {
  const Bytes good_sh = serverHello(0x0303, kSid, kRenegInfo);
  Bytes bad_version = record(22, good_sh);
  bad_version[1] = 2;
  Bytes huge = record(22, good_sh);
  huge[3] = 0x40;
  huge[4] = 0x01;
  const Bytes sv13 = extension(43, {3, 4});
  Bytes sh13_trailing = cat({serverHello(0x0303, kSid, sv13), {0}});
  sh13_trailing[3] = static_cast<uint8_t>(sh13_trailing[3] + 1);  // inside the message
  const std::pair<const char*, Bytes> cases[] = {
      {"application data first", record(23, Bytes(10, 0))},
      {"garbage", Bytes{'H', 'T', 'T', 'P', '/', '1', '.', '1'}},
      {"record major version 2", bad_version},
      {"record longer than 2^14", huge},
      {"zero-length handshake record", record(22, {})},
      {"first message not ServerHello", record(22, handshake(11, Bytes(10, 0)))},
      {"ticket before ServerHello", record(22, ticketMessage(Bytes(8, 1)))},
      {"second ServerHello", record(22, cat({good_sh, good_sh}))},
      {"session ID of 33", record(22, serverHello(0x0303, Bytes(33, 1), kRenegInfo))},
      {"extensions longer than message",
       record(22, handshake(2, cat({u16(0x0303), Bytes(32, 0), {0}, {0xc0, 0x2f}, {0}, u16(10)})))},
      {"byte after extensions",
       record(22, handshake(2, cat({u16(0x0303), Bytes(32, 0), {0}, {0xc0, 0x2f}, {0}, u16(0), {0}})))},
      {"extension past its block",
       record(22, handshake(2, cat({u16(0x0303), Bytes(32, 0), {0}, {0xc0, 0x2f}, {0}, u16(4),
                                    u16(0xff01), u16(1)})))},
      {"message ends inside random", record(22, handshake(2, cat({u16(0x0303), Bytes(10, 0)})))},
      {"supported_versions selecting TLS 1.2",
       record(22, serverHello(0x0303, kSid, extension(43, {3, 3})))},
      {"supported_versions of 3 bytes",
       record(22, serverHello(0x0303, kSid, extension(43, {3, 4, 0})))},
      {"ticket length disagrees with message",
       cat({record(22, good_sh), record(22, handshake(4, cat({{0, 0, 0, 1}, u16(9), Bytes(4, 1)})))})},
      {"alert inside a split message",
       cat({record(22, Bytes(good_sh.begin(), good_sh.begin() + 10)), record(21, {1, 0}),
            record(22, Bytes(good_sh.begin() + 10, good_sh.end()))})},
      {"ChangeCipherSpec inside a split message",
       cat({record(22, Bytes(good_sh.begin(), good_sh.begin() + 10)), kCcs})},
      {"ChangeCipherSpec before ServerHello", kCcs},
      {"application data before ChangeCipherSpec",
       cat({record(22, good_sh), record(23, Bytes(30, 0))})},
      {"TLS 1.3 ServerHello with a byte after its extensions", record(22, sh13_trailing)},
  };
  for (const auto& [name, flight] : cases) {
    SCOPED_TRACE(name);
    const Observed o = observeAllSplits(flight);
    EXPECT_TRUE(o.done);
    EXPECT_TRUE(o.malformed);
  }
}

TEST(ServerFlightTest, ObservationStopsAfterMaxObservedBytesWithoutBlame) {
  const Bytes flight = cat({record(22, serverHello(0x0303, kSid, kRenegInfo)),
                            record(22, handshake(11, Bytes(3000, 0))), kCcs});
  for (const std::vector<size_t>& split : {std::vector<size_t>{flight.size()}, {1}, {7, 300}}) {
    const Observed o = observe(flight, split, /*max_observed=*/100);
    EXPECT_TRUE(o.done);
    EXPECT_FALSE(o.malformed);
    EXPECT_EQ(o.observed_bytes, 100u);
    EXPECT_EQ(o.session_id, kSid);  // the ServerHello fit within the budget
  }
  EXPECT_TRUE(ServerFlightObserver(0).done());
}

TEST(ServerFlightTest, FeedAfterDoneIsANoOp) {
  ServerFlightObserver obs;
  const Bytes flight = cat({record(22, serverHello(0x0303, kSid, kRenegInfo)), kCcs});
  obs.feed(flight);
  ASSERT_TRUE(obs.done());
  const Observed before = result(obs);
  obs.feed(record(22, ticketMessage(Bytes(16, 9))));
  obs.feed(Bytes{0xff, 0xff});
  EXPECT_EQ(result(obs), before);
}

TEST(ServerFlightTest, NotDoneWhileTheFlightIsIncomplete) {
  const Bytes flight = cat({record(22, serverHello(0x0303, kSid, kRenegInfo)), kCcs});
  for (size_t n = 0; n + 5 < flight.size(); ++n) {
    ServerFlightObserver obs;
    obs.feed({flight.data(), n});
    EXPECT_FALSE(obs.done()) << n;
    EXPECT_EQ(obs.observedBytes(), n);
  }
}

}  // namespace
}  // namespace ringlb::tls
