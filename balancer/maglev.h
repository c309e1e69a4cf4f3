// Maglev consistent hashing (Eisenbud et al., NSDI'16, section 3.4) with xxh3 hashes.
// Pure: builds and tests without sockets or io_uring.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ringlb::balancer {

struct MaglevBackend {
  std::string_view name;  // identity: the permutation depends only on the name
  uint32_t weight = 1;    // relative share of table entries; 0 = no entries
};

class MaglevTable {
 public:
  // `size` must be prime and larger than the number of backends (65537 is typical).
  MaglevTable(std::span<const MaglevBackend> backends, uint32_t size);

  // Backend index for a key hash; kNoBackend (UINT32_MAX) if no backend has weight.
  uint32_t lookup(uint64_t hash) const { return table_.empty() ? UINT32_MAX : table_[hash % table_.size()]; }
  uint32_t size() const { return static_cast<uint32_t>(table_.size()); }
  const std::vector<uint32_t>& entries() const { return table_; }

 private:
  std::vector<uint32_t> table_;
};

}  // namespace ringlb::balancer
