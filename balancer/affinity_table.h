// TLS session affinity: session ID / ticket digest -> backend index, learned from what
// servers send (ServerHello session IDs, TLS 1.2 NewSessionTicket) and consulted for
// resumption attempts. One table per pool: an ID only picks a backend inside the pool that
// routing chose, never the pool. Shared by all workers: sharded, one small lock per shard,
// touched only on hellos that carry a session ID or ticket. Bounded entries (evicting the
// oldest in a shard) and a TTL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace ringlb::balancer {

class AffinityTable {
 public:
  using Clock = std::chrono::steady_clock;

  AffinityTable(size_t max_entries, std::chrono::milliseconds ttl);
  ~AffinityTable();
  AffinityTable(const AffinityTable&) = delete;
  AffinityTable& operator=(const AffinityTable&) = delete;

  void insert(uint64_t key, uint32_t backend, Clock::time_point now = Clock::now());
  std::optional<uint32_t> lookup(uint64_t key, Clock::time_point now = Clock::now());
  void erase(uint64_t key);
  size_t size() const;

  // Keys: distinct domains so a session ID can never collide with a ticket digest.
  static uint64_t sessionIdKey(std::span<const uint8_t> session_id);
  static uint64_t ticketKey(uint64_t ticket_digest);

 private:
  struct Shard;
  static constexpr size_t kShards = 64;
  Shard* shards_;
  size_t per_shard_max_;
  std::chrono::milliseconds ttl_;
};

}  // namespace ringlb::balancer
