#include "balancer/maglev.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

namespace ringlb::balancer {
namespace {

// Two independent hashes of the backend name give each backend its own permutation of the
// table (NSDI'16 s3.4): offset in [0, M), skip in [1, M-1]. Changing these seeds moves every
// key, so they are part of the on-the-wire behaviour (all workers and all ringlb instances
// with the same backends must agree) and must never change.
constexpr uint64_t kOffsetSeed = 0x6d61676c65764f66ULL;  // "maglevOf"
constexpr uint64_t kSkipSeed = 0x6d61676c65765369ULL;    // "maglevSi"
constexpr uint32_t kEmpty = UINT32_MAX;

[[maybe_unused]] bool isPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; static_cast<uint64_t>(d) * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// One backend's walk through its permutation: position = (offset + j * skip) mod M for
// j = 0, 1, 2, ... kept incrementally so the fill loop does no multiplication or division.
struct Walk {
  uint64_t position = 0;
  uint64_t skip = 1;
  uint64_t steps = 0;    // positions visited; reaching M means the walk is exhausted
  uint64_t credit = 0;   // weighted turns, see the fill loop
  uint32_t weight = 0;
};

}  // namespace

// Population (NSDI'16 s3.4, Pseudocode 1), weighted.
//
// Unweighted Maglev lets every backend in turn claim the next still-empty entry of its
// permutation until the table is full, so each gets floor(M/N) or ceil(M/N) entries.
//
// Weights use credits (the scheme Katran's MaglevV2 uses): each round every backend adds its
// weight to its credit and takes one turn for each whole `max_weight` of credit it holds.
// The heaviest backend thus takes exactly one turn per round and a backend of weight w takes
// w / max_weight turns per round on average, so entries are shared in proportion to weight;
// the rounding error is at most one entry per backend. A round takes at most N entries, so
// no backend can run far ahead of the others. Weight 0 means no entries at all.
//
// Cost: every round fills at least one entry (the heaviest backend's turn), so there are at
// most M rounds of N credit updates; the permutation walks add O(M log M) expected for
// equal weights, as in the paper.
MaglevTable::MaglevTable(std::span<const MaglevBackend> backends, uint32_t size) {
  // Programmer errors only: user input was checked by config validation.
  assert(isPrime(size) && "Maglev table size must be prime");
  assert(size > backends.size() && "Maglev table size must exceed the number of backends");

  uint32_t max_weight = 0;
  for (const MaglevBackend& b : backends) max_weight = std::max(max_weight, b.weight);
  if (max_weight == 0 || size == 0) return;  // no backend can take an entry: empty table

  const uint64_t m = size;
  std::vector<Walk> walks(backends.size());
  for (size_t i = 0; i < backends.size(); ++i) {
    const std::string_view name = backends[i].name;
    walks[i].position = XXH3_64bits_withSeed(name.data(), name.size(), kOffsetSeed) % m;
    walks[i].skip = m > 1 ? XXH3_64bits_withSeed(name.data(), name.size(), kSkipSeed) % (m - 1) + 1 : 1;
    walks[i].weight = backends[i].weight;
  }

  table_.assign(size, kEmpty);
  uint64_t filled = 0;
  // With a prime M every skip is coprime to M, so each walk visits every entry and the loop
  // ends with a full table. A non-prime M (programmer error, asserted above) could leave
  // walks that cycle over a subset; `live` counts walks that can still claim something so
  // release builds terminate instead of spinning, leaving unclaimed entries as kNoBackend.
  size_t live = backends.size();
  while (filled < m && live > 0) {
    live = 0;
    for (size_t i = 0; i < walks.size() && filled < m; ++i) {
      Walk& w = walks[i];
      if (w.weight == 0 || w.steps >= m) continue;
      ++live;
      w.credit += w.weight;
      while (w.credit >= max_weight && filled < m && w.steps < m) {
        w.credit -= max_weight;
        // Claim this backend's next preferred entry that nobody holds yet.
        while (w.steps < m && table_[w.position] != kEmpty) {
          w.position += w.skip;
          if (w.position >= m) w.position -= m;
          ++w.steps;
        }
        if (w.steps >= m) break;
        table_[w.position] = static_cast<uint32_t>(i);
        ++filled;
      }
    }
  }
}

}  // namespace ringlb::balancer
