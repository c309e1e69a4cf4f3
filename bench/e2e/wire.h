// Wire protocol between e2e_loadgen and e2e_sink, carried through the load balancer under
// test exactly as a TLS client's bytes would be:
//
//   client -> LB -> sink:  one TLS record holding a real ClientHello (5-byte record header +
//                          body; the LB routes on its SNI and replays it unchanged)
//                          Command (kCommandSize bytes, layout below)
//                          `up` payload bytes
//   sink -> LB -> client:  `down` payload bytes, then FIN (the sink closes)
//
// The sink answers only after it has read all `up` bytes, and closes on anything it does not
// expect. So a client that reads exactly `down` bytes and then EOF knows both byte counts
// crossed the LB intact.
//
//   Command, little-endian:
//   +0  "RLB1"          magic
//   +4  u32             reserved, 0
//   +8  u64 up          bytes the client sends after the command
//   +16 u64 down        bytes the sink sends back once `up` bytes have arrived
//   +24 u64             reserved, 0
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringlb::bench::e2e {

inline constexpr size_t kCommandSize = 32;
inline constexpr char kCommandMagic[4] = {'R', 'L', 'B', '1'};
inline constexpr size_t kTlsRecordHeader = 5;
inline constexpr uint8_t kTlsHandshake = 0x16;

struct Command {
  uint64_t up = 0;
  uint64_t down = 0;
};

inline void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint64_t getU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline void encodeCommand(const Command& c, uint8_t out[kCommandSize]) {
  std::memset(out, 0, kCommandSize);
  std::memcpy(out, kCommandMagic, sizeof(kCommandMagic));
  putU64(out + 8, c.up);
  putU64(out + 16, c.down);
}

// False if the magic is wrong (not one of our clients).
inline bool decodeCommand(const uint8_t in[kCommandSize], Command& c) {
  if (std::memcmp(in, kCommandMagic, sizeof(kCommandMagic)) != 0) return false;
  c.up = getU64(in + 8);
  c.down = getU64(in + 16);
  return true;
}

}  // namespace ringlb::bench::e2e
