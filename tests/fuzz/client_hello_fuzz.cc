// libFuzzer target for the TLS wire parsers: parseClientHello and ServerFlightObserver see the
// same bytes. Beyond "no crash, no out-of-bounds read" (ASan/UBSan), it checks the contracts:
// status/error agree, NeedMore promises more than it got, a Complete hello satisfies every
// strictness rule, re-framing a Complete hello into other record sizes or truncating it does not
// change the answer, and the observer reaches the same state however its input is split.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tls/client_hello.h"
#include "tls/server_flight.h"

namespace {

using ringlb::tls::ClientHelloInfo;
using ringlb::tls::ParseError;
using ringlb::tls::ParseLimits;
using ringlb::tls::ParseStatus;
using ringlb::tls::ServerFlightObserver;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(const uint8_t* p, size_t n, const uint8_t* base, size_t size) {
  return n == 0 || (p >= base && p + n <= base + size);
}

struct Parsed {
  ParseStatus status;
  ClientHelloInfo info;
};

Parsed parse(const uint8_t* data, size_t size, std::vector<uint8_t>& scratch) {
  // An exactly-sized copy: any read past `size` is an ASan report, not a silent hit on
  // libFuzzer's buffer or on the caller's larger one.
  std::vector<uint8_t> exact(data, data + size);
  Parsed p{ParseStatus::Invalid, {}};
  p.status = parseClientHello({exact.data(), exact.size()}, scratch, ParseLimits{}, p.info);
  // Views must point into the input or scratch (checked while `exact` is alive).
  const auto& i = p.info;
  for (auto view : {i.random, i.session_id, i.cipher_suites, i.supported_versions, i.session_ticket}) {
    require(inside(view.data(), view.size(), exact.data(), exact.size()) ||
            inside(view.data(), view.size(), scratch.data(), scratch.size()));
  }
  // Views die with `exact`: keep only the scalars the caller checks.
  Parsed out{p.status, {}};
  out.info.error = i.error;
  out.info.bytes_needed = i.bytes_needed;
  out.info.hello_record_bytes = i.hello_record_bytes;
  return out;
}

void checkComplete(const uint8_t* data, size_t size, std::vector<uint8_t>& scratch) {
  ClientHelloInfo info;
  const ParseStatus status = parseClientHello({data, size}, scratch, ParseLimits{}, info);
  require(status == ParseStatus::Complete);
  require(info.hello_record_bytes > 0 && info.hello_record_bytes <= size);
  require(info.random.size() == 32 && info.session_id.size() <= 32);
  require(!info.cipher_suites.empty() && info.cipher_suites.size() % 2 == 0);
  if (info.has_sni) {
    require(!info.sni.empty() && info.sni.size() <= 255);
    for (char c : info.sni) require(static_cast<uint8_t>(c) >= 0x21 && static_cast<uint8_t>(c) < 0x7f);
  }
  if (info.has_alpn) {
    size_t names = 0;
    info.alpn.forEach([&names](std::string_view name) {
      require(!name.empty());
      ++names;
    });
    require(names > 0);
  }
  if (info.has_supported_versions) {
    require(info.supported_versions.size() >= 2 && info.supported_versions.size() % 2 == 0);
  }
  if (info.has_psk) require(info.psk_identities.count() > 0);
  (void)info.maxOfferedVersion();
}

// Re-frames the handshake bytes of the first `record_bytes` of a Complete hello into records
// of `fragment` bytes.
std::vector<uint8_t> reframe(const uint8_t* data, size_t record_bytes, size_t fragment) {
  std::vector<uint8_t> payload;
  for (size_t pos = 0; pos + 5 <= record_bytes;) {
    const size_t len = (size_t{data[pos + 3]} << 8) | data[pos + 4];
    payload.insert(payload.end(), data + pos + 5, data + pos + 5 + len);
    pos += 5 + len;
  }
  std::vector<uint8_t> out;
  for (size_t off = 0; off < payload.size(); off += fragment) {
    const size_t len = std::min(fragment, payload.size() - off);
    out.insert(out.end(), {0x16, 0x03, 0x01, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    out.insert(out.end(), payload.begin() + static_cast<long>(off),
               payload.begin() + static_cast<long>(off + len));
  }
  return out;
}

void fuzzClientHello(const uint8_t* data, size_t size) {
  std::vector<uint8_t> scratch(ParseLimits{}.max_hello_bytes);
  const Parsed whole = parse(data, size, scratch);
  switch (whole.status) {
    case ParseStatus::Invalid:
      require(whole.info.error != ParseError::None);
      require(!ringlb::tls::parseErrorName(whole.info.error).empty());
      return;
    case ParseStatus::NeedMore:
      require(whole.info.error == ParseError::None);
      require(whole.info.bytes_needed > size);
      return;
    case ParseStatus::Complete: break;
  }
  require(whole.info.error == ParseError::None);
  checkComplete(data, size, scratch);
  const size_t records = whole.info.hello_record_bytes;
  // Any truncation of the hello's records is NeedMore, never Invalid.
  for (size_t cut : {size_t{0}, records / 2, records - 1}) {
    const Parsed part = parse(data, cut, scratch);
    require(part.status == ParseStatus::NeedMore);
    require(part.info.bytes_needed > cut && part.info.bytes_needed <= records);
  }
  // The same handshake bytes in other framings parse to the same hello.
  ClientHelloInfo first;
  std::vector<uint8_t> first_scratch(ParseLimits{}.max_hello_bytes);
  parseClientHello({data, size}, first_scratch, ParseLimits{}, first);
  for (size_t fragment : {size_t{1}, size_t{7} + size % 64, size_t{16384}}) {
    const std::vector<uint8_t> framed = reframe(data, records, fragment);
    ClientHelloInfo again;
    require(parseClientHello(framed, scratch, ParseLimits{}, again) == ParseStatus::Complete);
    require(again.hello_record_bytes == framed.size());
    require(again.sni == first.sni && again.extension_count == first.extension_count);
    require(again.session_ticket.size() == first.session_ticket.size());
    require(again.maxOfferedVersion() == first.maxOfferedVersion());
  }
}

struct Observed {
  bool done, malformed, saw_server_hello, has_ticket;
  uint16_t version;
  uint64_t digest;
  size_t observed;
  std::vector<uint8_t> session_id;
  bool operator==(const Observed&) const = default;
};

Observed observe(const uint8_t* data, size_t size, size_t seed, size_t max_observed) {
  ServerFlightObserver obs(max_observed);
  size_t state = seed * 2654435761u + 1;
  for (size_t pos = 0; pos < size;) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    const size_t n = seed == 0 ? size : std::min(size - pos, 1 + (state >> 33) % (seed * 16));
    std::vector<uint8_t> chunk(data + pos, data + pos + n);  // exactly sized, for ASan
    obs.feed(chunk);
    pos += n;
  }
  require(obs.observedBytes() <= size && obs.observedBytes() <= max_observed);
  require(!obs.malformed() || obs.done());
  require(obs.sessionId().size() <= 32);
  return {obs.done(), obs.malformed(), obs.sawServerHello(), obs.hasTicket(), obs.version(),
          obs.ticketDigest(), obs.observedBytes(),
          std::vector<uint8_t>(obs.sessionId().begin(), obs.sessionId().end())};
}

void fuzzServerFlight(const uint8_t* data, size_t size) {
  const Observed whole = observe(data, size, 0, 64 * 1024);
  require(observe(data, size, 1, 64 * 1024) == whole);  // 1..16-byte feeds
  require(observe(data, size, 7, 64 * 1024) == whole);
  // A budget ends inspection without blame.
  const size_t budget = size / 3;
  const Observed capped = observe(data, size, 3, budget);
  require(capped.observed <= budget);
  if (whole.done && whole.observed <= budget) {
    require(capped == whole);
  } else {
    require(capped.done && !capped.malformed && capped.observed == budget);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzClientHello(data, size);
  fuzzServerFlight(data, size);
  return 0;
}
