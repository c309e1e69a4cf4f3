#include "balancer/selector.h"

#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "balancer/maglev.h"

namespace ringlb::balancer {
namespace {

bool wasTried(std::span<const uint32_t> tried, uint32_t index) {
  return std::find(tried.begin(), tried.end(), index) != tried.end();
}

bool usable(const Backend& backend, const PickRequest& request) {
  return backend.backup == request.backup && backend.eligible(request.now) && !wasTried(request.tried, backend.index);
}

// Live connections as a non-negative 64-bit number: the counter is decremented by other
// workers, so a racing reader may briefly see it below zero.
int64_t activeOf(const Backend& backend) {
  return std::max<int64_t>(0, backend.stats().active.load(std::memory_order_relaxed));
}

// a.active / a.weight < b.active / b.weight, without division. Both weights are > 0
// (eligible), and 2^31 * 2^32 fits in int64.
bool lessLoaded(const Backend& a, uint32_t a_weight, const Backend& b, uint32_t b_weight) {
  return activeOf(a) * static_cast<int64_t>(b_weight) < activeOf(b) * static_cast<int64_t>(a_weight);
}

// Smooth weighted round robin, as nginx's ngx_http_upstream_get_peer(): every pick, each
// candidate's current weight grows by its weight, the largest is chosen (first on ties) and
// loses the sum of the candidates' weights. Weights {5,1,1} give "a a b a c a a". Backends
// that are not eligible or were tried take no part in the round (neither in the increment nor
// in the total), as in nginx.
class RoundRobinSelector final : public Selector {
 public:
  explicit RoundRobinSelector(const Pool& pool) : pool_(pool), current_(pool.backends.size(), 0) {}

  uint32_t pick(const PickRequest& request) override {
    int64_t total = 0;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < pool_.backends.size(); ++i) {
      const Backend& b = *pool_.backends[i];
      if (!usable(b, request)) continue;
      const uint32_t weight = b.effectiveWeight(request.now);
      current_[i] += weight;
      total += weight;
      if (best == SIZE_MAX || current_[i] > current_[best]) best = i;
    }
    if (best == SIZE_MAX) return kNoBackend;
    current_[best] -= total;
    return pool_.backends[best]->index;
  }

 private:
  const Pool& pool_;
  std::vector<int64_t> current_;
};

// Weighted least connections: the fewest live connections per unit of weight (so with equal
// weights, simply the fewest); ties go to the higher weight, then to the first backend at or
// after a start position that rotates every pick, so idle backends are not all hit in index
// order by every worker.
class LeastConnSelector final : public Selector {
 public:
  explicit LeastConnSelector(const Pool& pool, uint64_t seed)
      : pool_(pool), start_(pool.backends.empty() ? 0 : seed % pool.backends.size()) {}

  uint32_t pick(const PickRequest& request) override {
    const size_t n = pool_.backends.size();
    if (n == 0) return kNoBackend;
    const Backend* best = nullptr;
    uint32_t best_weight = 0;
    for (size_t k = 0, i = start_; k < n; ++k, i = (i + 1 == n) ? 0 : i + 1) {
      const Backend& b = *pool_.backends[i];
      if (!usable(b, request)) continue;
      const uint32_t weight = b.effectiveWeight(request.now);
      if (best == nullptr || lessLoaded(b, weight, *best, best_weight) ||
          (!lessLoaded(*best, best_weight, b, weight) && weight > best_weight)) {
        best = &b;
        best_weight = weight;
      }
    }
    start_ = (start_ + 1 == n) ? 0 : start_ + 1;
    return best ? best->index : kNoBackend;
  }

 private:
  const Pool& pool_;
  size_t start_;
};

// splitmix64 (Steele, Lea, Flood, OOPSLA'14): tiny, fast, good enough for load spreading.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n << 2^64 (modulo bias below 2^-40 for n < 2^24).
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

// Power of two choices (Mitzenmacher): two distinct usable backends chosen uniformly at
// random, the one with fewer live connections per unit of weight wins (the first drawn on a
// tie). The pair is drawn by rejection sampling over the whole pool (O(1) expected when most
// backends are usable); if that keeps failing, an exact pass counts the usable backends and
// draws ranks among them, so the result is uniform either way and never ineligible.
class PowerOfTwoSelector final : public Selector {
 public:
  PowerOfTwoSelector(const Pool& pool, uint64_t seed) : pool_(pool), rng_(seed) {}

  uint32_t pick(const PickRequest& request) override {
    const size_t n = pool_.backends.size();
    if (n == 0) return kNoBackend;
    const Backend* first = drawUsable(request, nullptr);
    const Backend* second = first ? drawUsable(request, first) : nullptr;
    if (first == nullptr || second == nullptr) return exactPick(request);
    return better(*first, *second, request.now)->index;
  }

 private:
  static constexpr int kDraws = 8;

  // The less loaded of the pair; the first drawn on a tie.
  static const Backend* better(const Backend& first, const Backend& second, core::Clock::time_point now) {
    return lessLoaded(second, second.effectiveWeight(now), first, first.effectiveWeight(now)) ? &second : &first;
  }

  const Backend* drawUsable(const PickRequest& request, const Backend* other) {
    for (int attempt = 0; attempt < kDraws; ++attempt) {
      const Backend* b = pool_.backends[rng_.below(pool_.backends.size())].get();
      if (b != other && usable(*b, request)) return b;
    }
    return nullptr;
  }

  const Backend* nthUsable(const PickRequest& request, size_t rank) const {
    for (const auto& b : pool_.backends) {
      if (usable(*b, request) && rank-- == 0) return b.get();
    }
    return nullptr;
  }

  uint32_t exactPick(const PickRequest& request) {
    size_t count = 0;
    for (const auto& b : pool_.backends) count += usable(*b, request) ? 1 : 0;
    if (count == 0) return kNoBackend;
    if (count == 1) return nthUsable(request, 0)->index;
    const size_t r1 = rng_.below(count);
    size_t r2 = rng_.below(count - 1);
    if (r2 >= r1) ++r2;
    return better(*nthUsable(request, r1), *nthUsable(request, r2), request.now)->index;
  }

  const Pool& pool_;
  SplitMix64 rng_;
};

// Maglev: the table's backend for the key hash. If that backend is not usable (unhealthy,
// weight 0, or already tried by this connection), the fallback is deterministic, so every
// worker and every ringlb instance sends the same key to the same replacement:
//   1. up to kRehashes lookups of xxh3(hash, seed = attempt) for attempt = 1..kRehashes,
//      which spreads one dead backend's keys over the survivors in proportion to their
//      table share;
//   2. then a linear scan from hash % N for the first usable backend.
class MaglevSelector final : public Selector {
 public:
  explicit MaglevSelector(const Pool& pool) : pool_(pool) {}

  uint32_t pick(const PickRequest& request) override {
    const size_t n = pool_.backends.size();
    if (n == 0) return kNoBackend;
    if (pool_.maglev) {
      if (const Backend* b = fromTable(request.hash, request)) return b->index;
      for (uint64_t attempt = 1; attempt <= kRehashes; ++attempt) {
        const uint64_t h = XXH3_64bits_withSeed(&request.hash, sizeof(request.hash), attempt);
        if (const Backend* b = fromTable(h, request)) return b->index;
      }
    }
    const size_t start = static_cast<size_t>(request.hash % n);
    for (size_t k = 0; k < n; ++k) {
      const Backend& b = *pool_.backends[(start + k) % n];
      if (usable(b, request)) return b.index;
    }
    return kNoBackend;
  }

 private:
  static constexpr uint64_t kRehashes = 4;

  const Backend* fromTable(uint64_t hash, const PickRequest& request) const {
    const uint32_t i = pool_.maglev->lookup(hash);
    if (i >= pool_.backends.size()) return nullptr;
    const Backend& b = *pool_.backends[i];
    return usable(b, request) ? &b : nullptr;
  }

  const Pool& pool_;
};

// Seeds for hashKey(): one per key kind, so the SNI "x" and the client address "x" (or the
// pair) never hash alike by accident. Part of the persistent key -> backend mapping: never
// change them.
constexpr uint64_t kSniSeed = 0x726c622d736e6931ULL;   // "rlb-sni1"
constexpr uint64_t kAddrSeed = 0x726c622d61646472ULL;  // "rlb-addr"
constexpr uint64_t kPairSeed = 0x726c622d70616972ULL;  // "rlb-pair"

}  // namespace

uint32_t pickBackend(Selector& selector, PickRequest request, bool* used_backup) {
  request.backup = false;
  uint32_t index = selector.pick(request);
  if (index == kNoBackend) {
    request.backup = true;
    index = selector.pick(request);
  }
  if (used_backup) *used_backup = request.backup && index != kNoBackend;
  return index;
}

std::unique_ptr<Selector> makeSelector(const Pool& pool, uint64_t seed) {
  const Algorithm algorithm = pool.config ? pool.config->algorithm : Algorithm::RoundRobin;
  switch (algorithm) {
    case Algorithm::RoundRobin: return std::make_unique<RoundRobinSelector>(pool);
    case Algorithm::LeastConn: return std::make_unique<LeastConnSelector>(pool, seed);
    case Algorithm::PowerOfTwo: return std::make_unique<PowerOfTwoSelector>(pool, seed);
    case Algorithm::Maglev: return std::make_unique<MaglevSelector>(pool);
  }
  return std::make_unique<RoundRobinSelector>(pool);
}

// Sni:            xxh3(sni_lower, kSniSeed)
// ClientIp:       xxh3(addr, kAddrSeed)
// SniAndClientIp: xxh3(addr, seed = xxh3(sni_lower, kPairSeed)). Chaining through the seed
//                 keeps the boundary between the two fields (no "ab"+"c" == "a"+"bc").
uint64_t hashKey(HashKey key, std::string_view sni_lower, std::string_view client_addr_bytes) {
  switch (key) {
    case HashKey::Sni:
      return XXH3_64bits_withSeed(sni_lower.data(), sni_lower.size(), kSniSeed);
    case HashKey::ClientIp:
      return XXH3_64bits_withSeed(client_addr_bytes.data(), client_addr_bytes.size(), kAddrSeed);
    case HashKey::SniAndClientIp: {
      const uint64_t sni_hash = XXH3_64bits_withSeed(sni_lower.data(), sni_lower.size(), kPairSeed);
      return XXH3_64bits_withSeed(client_addr_bytes.data(), client_addr_bytes.size(), sni_hash);
    }
  }
  return 0;
}

}  // namespace ringlb::balancer
