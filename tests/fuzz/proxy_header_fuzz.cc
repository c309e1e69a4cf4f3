// libFuzzer target for the PROXY protocol header parser. Beyond "no crash, no out-of-bounds
// read" (ASan/UBSan on an exactly sized copy), it checks the contracts in
// balancer/proxy_protocol_parse.h: status and error agree, Complete consumes a non-empty
// prefix, NeedMore asks for more than it got, every prefix of the input answers NeedMore or
// the same final answer (so byte-by-byte feeding is equivalent), views point into the input,
// and a Complete v2 PROXY header re-encoded by encodeProxyV2 parses back to the same facts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "balancer/proxy_protocol.h"
#include "balancer/proxy_protocol_parse.h"

namespace {

using namespace ringlb::balancer;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(std::string_view view, const std::vector<uint8_t>& data) {
  const auto* p = reinterpret_cast<const uint8_t*>(view.data());
  return view.empty() || (p >= data.data() && p + view.size() <= data.data() + data.size());
}

ProxyParseResult parseExact(const uint8_t* data, size_t size, ProxyVersionAccepted accepted,
                            const ProxyParseLimits& limits, ProxyHeader& h, std::vector<uint8_t>& copy) {
  // A fresh, exactly sized allocation (assign() would keep a larger capacity, and ASan does
  // not see reads into a vector's spare capacity): a read past `size` is an ASan report.
  copy = std::vector<uint8_t>(data, data + size);
  ProxyParseResult r = parseProxyHeader(copy, accepted, h, limits);
  require((r.status == ProxyParseStatus::Invalid) == (r.error != ProxyParseError::None));
  if (r.status == ProxyParseStatus::Complete) require(r.consumed > 0 && r.consumed <= size);
  if (r.status == ProxyParseStatus::NeedMore) require(r.bytes_needed > size);
  if (r.status != ProxyParseStatus::Complete) require(r.consumed == 0 && !h.has_addresses);
  if (r.status == ProxyParseStatus::Complete) {
    require(inside(h.authority, copy) && inside(h.alpn, copy) && inside(h.unique_id, copy));
    require(inside(h.ssl.version, copy) && inside(h.ssl.cn, copy) && inside(h.ssl.cipher, copy));
    require(inside(h.ssl.sig_alg, copy) && inside(h.ssl.key_alg, copy));
  }
  return r;
}

bool sameAnswer(const ProxyParseResult& a, const ProxyParseResult& b) {
  return a.status == b.status && a.error == b.error && a.consumed == b.consumed;
}

// Every prefix answers NeedMore or the final answer; and following bytes_needed from an empty
// input reaches the final answer.
void checkPrefixes(const uint8_t* data, size_t size, ProxyVersionAccepted accepted, const ProxyParseLimits& limits,
                   const ProxyParseResult& whole) {
  ProxyHeader h;
  std::vector<uint8_t> copy;
  size_t step = size > 512 ? size / 97 + 1 : 1;  // bound the quadratic work on big inputs
  for (size_t n = 0; n < size; n += step) {
    ProxyParseResult r = parseExact(data, n, accepted, limits, h, copy);
    if (r.status == ProxyParseStatus::NeedMore) continue;
    require(sameAnswer(r, whole));
  }
  size_t n = 0;
  for (;;) {
    ProxyParseResult r = parseExact(data, n, accepted, limits, h, copy);
    if (r.status != ProxyParseStatus::NeedMore) {
      require(sameAnswer(r, whole));
      return;
    }
    if (r.bytes_needed > size) {
      require(whole.status == ProxyParseStatus::NeedMore);
      return;
    }
    n = r.bytes_needed;
  }
}

void checkReencode(const ProxyHeader& h) {
  if (h.version != 2 || h.command != ProxyCommand::Proxy || !h.has_addresses) return;
  if (h.authority.size() > kProxyV2MaxTlvValue || h.alpn.size() > kProxyV2MaxTlvValue) return;
  ProxyV2Ssl ssl{.client = h.ssl.client, .verify = h.ssl.verify, .version = h.ssl.version, .cn = h.ssl.cn,
                 .cipher = h.ssl.cipher, .sig_alg = h.ssl.sig_alg, .key_alg = h.ssl.key_alg};
  ProxyV2Tlvs tlvs;
  tlvs.authority = h.authority;
  tlvs.alpn = h.alpn;
  tlvs.ssl = h.ssl.present ? &ssl : nullptr;
  std::vector<uint8_t> out(kProxyV2MaxHeader);
  size_t n = encodeProxyV2(out, h.source, h.destination, tlvs);
  if (n == 0) {  // only an over-cap SSL sub-TLV may make it fail
    require(h.ssl.present);
    return;
  }
  out.resize(n);
  ProxyHeader back;
  ProxyParseResult r = parseProxyHeader(out, ProxyVersionAccepted::V2, back);
  require(r.status == ProxyParseStatus::Complete && r.consumed == n);
  require(back.source.toString() == h.source.toString() && back.destination.toString() == h.destination.toString());
  require(back.authority == h.authority && back.alpn == h.alpn && back.ssl.present == h.ssl.present);
  require(back.ssl.client == h.ssl.client && back.ssl.verify == h.ssl.verify && back.ssl.cn == h.ssl.cn);
  require(back.ssl.version == h.ssl.version && back.ssl.key_alg == h.ssl.key_alg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy;
  ProxyHeader h;
  ProxyParseResult any = parseExact(data, size, ProxyVersionAccepted::Any, {}, h, copy);
  if (any.status == ProxyParseStatus::Complete) checkReencode(h);
  uint8_t version = h.version;
  checkPrefixes(data, size, ProxyVersionAccepted::Any, {}, any);
  // A listener for one version gives the same answer as Any for that version's headers and
  // VersionNotAccepted for the other's.
  for (ProxyVersionAccepted only : {ProxyVersionAccepted::V1, ProxyVersionAccepted::V2}) {
    ProxyParseResult r = parseExact(data, size, only, {}, h, copy);
    if (any.status != ProxyParseStatus::Complete) continue;
    bool mine = (version == 1) == (only == ProxyVersionAccepted::V1);
    require(mine ? sameAnswer(r, any) : r.error == ProxyParseError::VersionNotAccepted);
  }
  // A lower v2 cap never turns a header into a different Complete one.
  ProxyParseResult small = parseExact(data, size, ProxyVersionAccepted::Any, {.max_v2_header = 64}, h, copy);
  if (small.status == ProxyParseStatus::Complete) require(sameAnswer(small, any));
  return 0;
}
