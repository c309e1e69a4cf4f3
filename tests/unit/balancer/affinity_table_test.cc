#include "balancer/affinity_table.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ringlb::balancer {
namespace {

using namespace std::chrono_literals;
using Clock = AffinityTable::Clock;

const Clock::time_point kT0 = Clock::time_point{} + 1000h;

TEST(AffinityTableTest, LookupReturnsInsertedBackend) {
  AffinityTable table(1000, 60s);
  table.insert(7, 3, kT0);
  EXPECT_EQ(table.lookup(7, kT0), 3u);
  EXPECT_EQ(table.lookup(8, kT0), std::nullopt);
  EXPECT_EQ(table.size(), 1u);
}

TEST(AffinityTableTest, InsertOverwrites) {
  AffinityTable table(1000, 60s);
  table.insert(7, 3, kT0);
  table.insert(7, 5, kT0);
  EXPECT_EQ(table.lookup(7, kT0), 5u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(AffinityTableTest, EntryExpiresAfterTtlAndIsErasedOnLookup) {
  AffinityTable table(1000, 10s);
  table.insert(7, 3, kT0);
  EXPECT_EQ(table.lookup(7, kT0 + 10s - 1ms), 3u);
  EXPECT_EQ(table.lookup(7, kT0 + 10s), std::nullopt);
  EXPECT_EQ(table.size(), 0u);
  // Once expired it stays gone, even for an earlier clock reading.
  EXPECT_EQ(table.lookup(7, kT0), std::nullopt);
}

TEST(AffinityTableTest, OverwriteRefreshesTtl) {
  AffinityTable table(1000, 10s);
  table.insert(7, 3, kT0);
  table.insert(7, 3, kT0 + 8s);
  EXPECT_EQ(table.lookup(7, kT0 + 15s), 3u);
  EXPECT_EQ(table.lookup(7, kT0 + 18s), std::nullopt);
}

TEST(AffinityTableTest, EraseRemoves) {
  AffinityTable table(1000, 60s);
  table.insert(7, 3, kT0);
  table.erase(7);
  table.erase(8);  // absent: no effect
  EXPECT_EQ(table.lookup(7, kT0), std::nullopt);
  EXPECT_EQ(table.size(), 0u);
}

TEST(AffinityTableTest, SizeNeverExceedsMaxEntries) {
  for (size_t max : {1000u, 100u, 10u}) {
    AffinityTable table(max, 60s);
    std::mt19937_64 rng(max);
    for (size_t i = 0; i < max * 50; ++i) {
      table.insert(rng(), 1, kT0);
      ASSERT_LE(table.size(), max);
    }
    // Every shard has been filled many times over, so the table is exactly full.
    EXPECT_EQ(table.size(), max);
  }
}

TEST(AffinityTableTest, ZeroCapacityStoresNothing) {
  AffinityTable table(0, 60s);
  table.insert(1, 1, kT0);
  EXPECT_EQ(table.lookup(1, kT0), std::nullopt);
  EXPECT_EQ(table.size(), 0u);
}

// FIFO eviction: with 100 entries per shard, the newest 1000 of 100000 keys (about 16 per
// shard) are all still there, and the oldest 1000 are long gone.
TEST(AffinityTableTest, EvictsOldestEntriesFirst) {
  AffinityTable table(6400, 60s);
  for (uint64_t k = 0; k < 100000; ++k) table.insert(k, static_cast<uint32_t>(k % 7), kT0);
  for (uint64_t k = 0; k < 1000; ++k) EXPECT_EQ(table.lookup(k, kT0), std::nullopt) << k;
  for (uint64_t k = 99000; k < 100000; ++k) EXPECT_EQ(table.lookup(k, kT0), k % 7) << k;
}

// Model check of the open-addressing shard (probe chains, backward-shift deletion, FIFO
// compaction): random inserts, overwrites, erases and lookups against std::unordered_map,
// in a table large enough that nothing is evicted.
TEST(AffinityTableTest, MatchesAReferenceMapUnderRandomOperations) {
  AffinityTable table(64 * 512, 60s);
  std::unordered_map<uint64_t, uint32_t> model;
  std::mt19937_64 rng(7);
  for (int op = 0; op < 300000; ++op) {
    const uint64_t key = rng() % 6000;  // dense keys: long probe runs, many overwrites
    switch (rng() % 4) {
      case 0:
      case 1: {
        const auto backend = static_cast<uint32_t>(rng() % 100);
        table.insert(key, backend, kT0);
        model[key] = backend;
        break;
      }
      case 2:
        table.erase(key);
        model.erase(key);
        break;
      default: {
        auto it = model.find(key);
        const std::optional<uint32_t> want =
            it == model.end() ? std::nullopt : std::optional<uint32_t>(it->second);
        ASSERT_EQ(table.lookup(key, kT0), want) << "op " << op << " key " << key;
      }
    }
  }
  EXPECT_EQ(table.size(), model.size());
  for (const auto& [key, backend] : model) ASSERT_EQ(table.lookup(key, kT0), backend);
}

// The same under constant eviction: a hit must always be the latest value for its key.
TEST(AffinityTableTest, HitsStayCorrectWhileEvicting) {
  AffinityTable table(640, 60s);
  std::unordered_map<uint64_t, uint32_t> latest;
  std::mt19937_64 rng(11);
  size_t hits = 0;
  for (int op = 0; op < 200000; ++op) {
    const uint64_t key = rng() % 3000;
    if (rng() % 2 == 0) {
      const auto backend = static_cast<uint32_t>(rng() % 100);
      table.insert(key, backend, kT0);
      latest[key] = backend;
    } else if (auto hit = table.lookup(key, kT0)) {
      ASSERT_EQ(*hit, latest.at(key)) << "op " << op;
      ++hits;
    }
    ASSERT_LE(table.size(), 640u);
  }
  EXPECT_GT(hits, 0u);
}

TEST(AffinityTableTest, ConcurrentInsertsAndLookupsStayBoundedAndConsistent) {
  constexpr size_t kMax = 5000;
  AffinityTable table(kMax, 60s);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&table, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 50000; ++i) {
        const uint64_t key = rng() % 20000;
        // Each key always maps to the same backend, so any hit must return it.
        const auto backend = static_cast<uint32_t>(key % 13);
        switch (i % 3) {
          case 0: table.insert(key, backend); break;
          case 1: {
            auto hit = table.lookup(key);
            if (hit) {
              ASSERT_EQ(*hit, backend);
            }
            break;
          }
          default:
            if (i % 30 == 2) table.erase(key);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(table.size(), kMax);
  EXPECT_GT(table.size(), 0u);
}

TEST(AffinityTableTest, SessionIdAndTicketKeysNeverCollide) {
  std::unordered_set<uint64_t> session_keys;
  std::unordered_set<uint64_t> ticket_keys;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 50000; ++i) {
    std::array<uint8_t, 32> id{};
    for (auto& b : id) b = static_cast<uint8_t>(rng());
    const uint64_t digest = rng();
    session_keys.insert(AffinityTable::sessionIdKey(id));
    ticket_keys.insert(AffinityTable::ticketKey(digest));
    // By construction, not by luck: the domains differ in the top bit.
    ASSERT_EQ(AffinityTable::sessionIdKey(id) >> 63, 0u);
    ASSERT_EQ(AffinityTable::ticketKey(digest) >> 63, 1u);
  }
  for (uint64_t k : ticket_keys) ASSERT_EQ(session_keys.count(k), 0u);
  // Same bytes under both interpretations still give different keys.
  uint64_t v = 0x1122334455667788ULL;
  std::array<uint8_t, 8> bytes{};
  std::memcpy(bytes.data(), &v, 8);
  EXPECT_NE(AffinityTable::sessionIdKey(bytes), AffinityTable::ticketKey(v));
}

TEST(AffinityTableTest, KeysAreStableFunctionsOfTheirInput) {
  const std::array<uint8_t, 4> a{1, 2, 3, 4};
  const std::array<uint8_t, 4> b{1, 2, 3, 5};
  EXPECT_EQ(AffinityTable::sessionIdKey(a), AffinityTable::sessionIdKey(a));
  EXPECT_NE(AffinityTable::sessionIdKey(a), AffinityTable::sessionIdKey(b));
  EXPECT_EQ(AffinityTable::ticketKey(9), AffinityTable::ticketKey(9));
  EXPECT_NE(AffinityTable::ticketKey(9), AffinityTable::ticketKey(10));
}

}  // namespace
}  // namespace ringlb::balancer
