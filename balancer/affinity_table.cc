#include "balancer/affinity_table.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <mutex>
#include <vector>

namespace ringlb::balancer {
namespace {

// Key domains: the top bit says which kind of identifier a key came from, so a session ID
// key and a ticket key differ in that bit and can never be equal (not merely unlikely to).
constexpr uint64_t kTicketBit = uint64_t{1} << 63;
constexpr uint64_t kSessionIdSeed = 0x726c622d73657373ULL;  // "rlb-sess"
constexpr uint64_t kTicketSeed = 0x726c622d7469636bULL;     // "rlb-tick"

// splitmix64's finaliser: keys are usually xxh3 outputs already, but tests and future
// callers may use small integers; this spreads them over shards and slots all the same.
uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

// One shard: an open-addressing hash (linear probing, backward-shift deletion, load <= 1/2)
// plus a FIFO of (key, generation) records in insertion order for eviction. Overwriting a
// key gives it a new generation and a new FIFO record, so the old record goes stale; stale
// records are skipped when evicting and squeezed out when the FIFO fills (it holds twice
// the shard's capacity, so each compaction frees at least `cap` records: amortised O(1)).
// Arrays are allocated on the first insert and never again, so steady-state inserts and
// lookups do not allocate.
struct alignas(64) AffinityTable::Shard {
  struct Slot {
    uint64_t key = 0;
    Clock::time_point expires{};
    uint32_t generation = 0;  // 0 = empty slot
    uint32_t backend = 0;
  };
  struct Record {
    uint64_t key = 0;
    uint32_t generation = 0;
  };

  std::mutex mutex;
  size_t cap = 0;  // most live entries this shard may hold
  size_t count = 0;
  std::vector<Slot> slots;
  size_t mask = 0;
  std::vector<Record> fifo;
  size_t fifo_head = 0;
  size_t fifo_count = 0;
  uint32_t next_generation = 1;

  void allocate() {
    slots.assign(std::bit_ceil(std::max<size_t>(8, cap * 2)), Slot{});
    mask = slots.size() - 1;
    fifo.assign(cap * 2, Record{});
  }

  size_t home(uint64_t key) const { return static_cast<size_t>(mix(key)) & mask; }

  // Slot index holding `key`, or SIZE_MAX. Terminates: at least half the slots are empty.
  size_t find(uint64_t key) const {
    if (slots.empty()) return SIZE_MAX;
    for (size_t i = home(key);; i = (i + 1) & mask) {
      if (slots[i].generation == 0) return SIZE_MAX;
      if (slots[i].key == key) return i;
    }
  }

  // Backward-shift deletion (Knuth vol. 3, 6.4 Algorithm R): move later members of the
  // probe run into the hole unless their home lies cyclically in (hole, j].
  void eraseAt(size_t hole) {
    slots[hole].generation = 0;
    --count;
    for (size_t j = (hole + 1) & mask; slots[j].generation != 0; j = (j + 1) & mask) {
      const size_t from_hole_to_home = (home(slots[j].key) - hole) & mask;
      const size_t from_hole_to_j = (j - hole) & mask;
      if (from_hole_to_home != 0 && from_hole_to_home <= from_hole_to_j) continue;
      slots[hole] = slots[j];
      slots[j].generation = 0;
      hole = j;
    }
  }

  bool live(const Record& r) const {
    const size_t i = find(r.key);
    return i != SIZE_MAX && slots[i].generation == r.generation;
  }

  uint32_t newGeneration() {
    const uint32_t g = next_generation++;
    if (next_generation == 0) next_generation = 1;  // 0 marks empty slots
    return g;
  }

  // Evicts the live entry inserted (or overwritten) longest ago; drops stale records on
  // the way.
  void evictOldest() {
    while (fifo_count > 0) {
      const Record r = fifo[fifo_head];
      fifo_head = (fifo_head + 1) % fifo.size();
      --fifo_count;
      const size_t i = find(r.key);
      if (i != SIZE_MAX && slots[i].generation == r.generation) {
        eraseAt(i);
        return;
      }
    }
  }

  void pushRecord(Record r) {
    if (fifo_count == fifo.size()) compactFifo();
    if (fifo_count == fifo.size()) evictOldest();  // unreachable: live <= cap = size / 2
    fifo[(fifo_head + fifo_count) % fifo.size()] = r;
    ++fifo_count;
  }

  // Keeps only live records, in order. Writes never overtake reads, so in place is safe.
  void compactFifo() {
    size_t kept = 0;
    for (size_t k = 0; k < fifo_count; ++k) {
      const Record r = fifo[(fifo_head + k) % fifo.size()];
      if (live(r)) fifo[(fifo_head + kept++) % fifo.size()] = r;
    }
    fifo_count = kept;
  }

  void insert(uint64_t key, uint32_t backend, Clock::time_point expires) {
    if (cap == 0) return;
    if (slots.empty()) allocate();
    size_t i = find(key);
    if (i == SIZE_MAX) {
      if (count >= cap) evictOldest();
      for (i = home(key); slots[i].generation != 0; i = (i + 1) & mask) {
      }
      slots[i].key = key;
      ++count;
    }
    slots[i].backend = backend;
    slots[i].expires = expires;
    slots[i].generation = newGeneration();
    pushRecord({key, slots[i].generation});
  }
};

AffinityTable::AffinityTable(size_t max_entries, std::chrono::milliseconds ttl)
    : shards_(new Shard[kShards]), per_shard_max_((max_entries + kShards - 1) / kShards), ttl_(ttl) {
  // Spread max_entries exactly: shard s holds max/64 entries, plus one for the first
  // max % 64 shards, so no shard exceeds per_shard_max_ and the total never exceeds
  // max_entries.
  for (size_t s = 0; s < kShards; ++s) {
    shards_[s].cap = max_entries / kShards + (s < max_entries % kShards ? 1 : 0);
  }
}

AffinityTable::~AffinityTable() { delete[] shards_; }

void AffinityTable::insert(uint64_t key, uint32_t backend, Clock::time_point now) {
  Shard& shard = shards_[mix(key) >> 58];  // top 6 bits: 64 shards; low bits pick the slot
  std::lock_guard lock(shard.mutex);
  shard.insert(key, backend, now + ttl_);
}

std::optional<uint32_t> AffinityTable::lookup(uint64_t key, Clock::time_point now) {
  Shard& shard = shards_[mix(key) >> 58];
  std::lock_guard lock(shard.mutex);
  const size_t i = shard.find(key);
  if (i == SIZE_MAX) return std::nullopt;
  if (now >= shard.slots[i].expires) {
    shard.eraseAt(i);
    return std::nullopt;
  }
  return shard.slots[i].backend;
}

void AffinityTable::erase(uint64_t key) {
  Shard& shard = shards_[mix(key) >> 58];
  std::lock_guard lock(shard.mutex);
  const size_t i = shard.find(key);
  if (i != SIZE_MAX) shard.eraseAt(i);
}

size_t AffinityTable::size() const {
  size_t total = 0;
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard lock(shards_[s].mutex);
    total += shards_[s].count;
  }
  return total;
}

uint64_t AffinityTable::sessionIdKey(std::span<const uint8_t> session_id) {
  return XXH3_64bits_withSeed(session_id.data(), session_id.size(), kSessionIdSeed) & ~kTicketBit;
}

uint64_t AffinityTable::ticketKey(uint64_t ticket_digest) {
  return XXH3_64bits_withSeed(&ticket_digest, sizeof(ticket_digest), kTicketSeed) | kTicketBit;
}

}  // namespace ringlb::balancer
