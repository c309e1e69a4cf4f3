// Backend selection algorithms. A Selector is per worker (no sharing, no lock); pools and
// backends are shared (see backend.h). Every algorithm skips backends that are not
// eligible() or already tried by this connection, and returns kNoBackend when none is left.
// A request chooses among primaries or among backups (PickRequest::backup); pickBackend()
// tries the primaries first. Weights are effectiveWeight() (slow start, run-time weight).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "balancer/backend.h"

namespace ringlb::balancer {

inline constexpr uint32_t kNoBackend = UINT32_MAX;

struct PickRequest {
  uint64_t hash = 0;                  // Maglev key hash (see hashKey()); ignored by others
  std::span<const uint32_t> tried;    // backend indices this connection already tried
  core::Clock::time_point now{};      // for eligibility (ejection) and slow-start weights
  bool backup = false;                // choose among the backup backends instead of the primaries
};

class Selector {
 public:
  virtual ~Selector() = default;
  virtual uint32_t pick(const PickRequest& request) = 0;
};

// The primaries, then (only if none is eligible) the backups. *used_backup says which.
uint32_t pickBackend(Selector& selector, PickRequest request, bool* used_backup = nullptr);

// `seed` makes per-worker random choices independent (power-of-two).
std::unique_ptr<Selector> makeSelector(const Pool& pool, uint64_t seed);

// The Maglev key for a connection: xxh3-64 of the lower-cased SNI, the client address bytes,
// or both, per the pool's hash_key.
uint64_t hashKey(HashKey key, std::string_view sni_lower, std::string_view client_addr_bytes);

}  // namespace ringlb::balancer
