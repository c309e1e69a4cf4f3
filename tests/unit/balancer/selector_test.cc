#include "balancer/selector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "balancer/maglev.h"

// Counts heap allocations so tests can assert that a hot path allocates nothing. Replacing
// the global operator new is binary-wide; router_test.cc uses the same counter.
namespace ringlb::test {
std::atomic<long> g_allocations{0};
}  // namespace ringlb::test

// A replacement allocator is malloc/free underneath by design; GCC cannot see that the
// pairs match and warns (-Wmismatched-new-delete) in optimised builds.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  ringlb::test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace ringlb::balancer {
namespace {

// A Config and the pools built from it (pools point into the config, so keep both).
struct TestPool {
  Config config;
  std::vector<Pool> pools;

  TestPool(Algorithm algorithm, const std::vector<uint32_t>& weights, uint32_t table_size = 65537) {
    PoolConfig pool;
    pool.name = "p";
    pool.algorithm = algorithm;
    pool.maglev_table_size = table_size;
    pool.affinity = false;
    for (size_t i = 0; i < weights.size(); ++i) {
      BackendConfig b;
      b.name = std::string(1, static_cast<char>('a' + i));
      b.address.text = "127.0.0.1:" + std::to_string(8000 + i);
      b.weight = weights[i];
      pool.backends.push_back(b);
    }
    config.pools.push_back(pool);
    pools = buildPools(config);
  }
  Pool& pool() { return pools[0]; }
  Backend& backend(size_t i) { return *pools[0].backends[i]; }
};

std::string names(Selector& s, size_t picks) {
  std::string out;
  for (size_t i = 0; i < picks; ++i) {
    const uint32_t b = s.pick({});
    out += b == kNoBackend ? '-' : static_cast<char>('a' + b);
  }
  return out;
}

TEST(BuildPoolsTest, BackendsGetNameIndexWeightAndParsedAddress) {
  TestPool tp(Algorithm::Maglev, {3, 1});
  ASSERT_EQ(tp.pool().backends.size(), 2u);
  EXPECT_EQ(tp.backend(1).name, "b");
  EXPECT_EQ(tp.backend(1).index, 1u);
  EXPECT_EQ(tp.backend(0).weight, 3u);
  EXPECT_EQ(tp.backend(1).address.toString(), "127.0.0.1:8001");
  ASSERT_NE(tp.pool().maglev, nullptr);
  EXPECT_EQ(tp.pool().maglev->size(), 65537u);
  EXPECT_EQ(tp.pool().affinity, nullptr);
  TestPool rr(Algorithm::RoundRobin, {1});
  EXPECT_EQ(rr.pool().maglev, nullptr);
}

// ---- smooth weighted round robin ----

TEST(SwrrTest, WeightsFiveOneOneGiveNginxSequence) {
  TestPool tp(Algorithm::RoundRobin, {5, 1, 1});
  auto s = makeSelector(tp.pool(), 1);
  EXPECT_EQ(names(*s, 14), "aabacaaaabacaa");
}

TEST(SwrrTest, SharesFollowWeights) {
  TestPool tp(Algorithm::RoundRobin, {3, 2, 1, 0});
  auto s = makeSelector(tp.pool(), 1);
  std::map<char, int> c;
  for (char ch : names(*s, 600)) ++c[ch];
  EXPECT_EQ(c['a'], 300);
  EXPECT_EQ(c['b'], 200);
  EXPECT_EQ(c['c'], 100);
  EXPECT_EQ(c['d'], 0);
}

TEST(SwrrTest, UnhealthyBackendLeavesTheRotation) {
  TestPool tp(Algorithm::RoundRobin, {1, 1, 1});
  auto s = makeSelector(tp.pool(), 1);
  tp.backend(1).health().setAdmin(health::AdminState::Maint);
  const std::string seq = names(*s, 6);
  EXPECT_EQ(seq.find('b'), std::string::npos) << seq;
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 'a'), 3);
}

// ---- least connections ----

TEST(LeastConnTest, PrefersIdleBackend) {
  TestPool tp(Algorithm::LeastConn, {1, 1, 1});
  tp.backend(0).stats().active = 3;
  tp.backend(1).stats().active = 0;
  tp.backend(2).stats().active = 2;
  auto s = makeSelector(tp.pool(), 0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s->pick({}), 1u);
}

TEST(LeastConnTest, TiesRotateSoIdleBackendsShareLoad) {
  TestPool tp(Algorithm::LeastConn, {1, 1, 1, 1});
  auto s = makeSelector(tp.pool(), 0);
  std::set<uint32_t> seen;
  for (int i = 0; i < 4; ++i) seen.insert(s->pick({}));
  EXPECT_EQ(seen.size(), 4u);
}

TEST(LeastConnTest, TieGoesToHigherWeight) {
  TestPool tp(Algorithm::LeastConn, {1, 5, 1});
  auto s = makeSelector(tp.pool(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s->pick({}), 1u);
}

// Load is compared per unit of weight (as nginx and HAProxy do), so a weight-4 backend with
// 4 connections is as loaded as a weight-1 backend with 1.
TEST(LeastConnTest, LoadIsMeasuredPerUnitOfWeight) {
  TestPool tp(Algorithm::LeastConn, {1, 4});
  tp.backend(0).stats().active = 1;
  tp.backend(1).stats().active = 3;
  auto s = makeSelector(tp.pool(), 0);
  EXPECT_EQ(s->pick({}), 1u);  // 3/4 < 1/1
  tp.backend(1).stats().active = 5;
  EXPECT_EQ(s->pick({}), 0u);  // 1/1 < 5/4
}

// ---- power of two choices ----

TEST(PowerOfTwoTest, NeverPicksIneligible) {
  TestPool tp(Algorithm::PowerOfTwo, {1, 0, 1, 1, 1, 1, 1, 1});
  for (size_t i : {2u, 4u, 5u, 7u}) tp.backend(i).health().setAdmin(health::AdminState::Maint);
  auto s = makeSelector(tp.pool(), 7);
  for (int i = 0; i < 20000; ++i) {
    const uint32_t b = s->pick({});
    ASSERT_TRUE(b == 0 || b == 3 || b == 6) << b;
  }
}

TEST(PowerOfTwoTest, PicksTheLessLoadedOfThePair) {
  TestPool tp(Algorithm::PowerOfTwo, {1, 1});
  tp.backend(0).stats().active = 10;
  auto s = makeSelector(tp.pool(), 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s->pick({}), 1u);
}

// Connections that stay open: p2c keeps the spread tight where random choice would not.
TEST(PowerOfTwoTest, SpreadsLongLivedConnections) {
  TestPool tp(Algorithm::PowerOfTwo, std::vector<uint32_t>(10, 1));
  auto s = makeSelector(tp.pool(), 99);
  for (int i = 0; i < 10000; ++i) ++tp.backend(s->pick({})).stats().active;
  int lo = INT32_MAX;
  int hi = 0;
  for (size_t i = 0; i < 10; ++i) {
    lo = std::min(lo, tp.backend(i).stats().active.load());
    hi = std::max(hi, tp.backend(i).stats().active.load());
  }
  EXPECT_LE(hi - lo, 10) << "lo=" << lo << " hi=" << hi;
}

TEST(PowerOfTwoTest, SeedsMakeWorkersIndependent) {
  TestPool tp(Algorithm::PowerOfTwo, std::vector<uint32_t>(16, 1));
  auto s1 = makeSelector(tp.pool(), 1);
  auto s2 = makeSelector(tp.pool(), 2);
  auto s1_again = makeSelector(tp.pool(), 1);
  const std::string a = names(*s1, 64);
  EXPECT_NE(a, names(*s2, 64));
  EXPECT_EQ(a, names(*s1_again, 64));
}

// ---- Maglev ----

TEST(MaglevSelectorTest, SameKeySameBackendOnEveryWorker) {
  TestPool tp(Algorithm::Maglev, std::vector<uint32_t>(8, 1));
  auto w1 = makeSelector(tp.pool(), 1);
  auto w2 = makeSelector(tp.pool(), 2);
  for (uint64_t k = 0; k < 1000; ++k) {
    const uint64_t h = hashKey(HashKey::Sni, "host" + std::to_string(k), "");
    const uint32_t b = w1->pick({h, {}});
    EXPECT_EQ(b, tp.pool().maglev->lookup(h));
    EXPECT_EQ(b, w2->pick({h, {}}));
  }
}

// When a backend fails, only its keys move, and they move to the same place everywhere.
TEST(MaglevSelectorTest, FallbackIsDeterministicAndMovesOnlyTheFailedBackendsKeys) {
  TestPool tp(Algorithm::Maglev, std::vector<uint32_t>(8, 1));
  auto w1 = makeSelector(tp.pool(), 1);
  auto w2 = makeSelector(tp.pool(), 2);
  std::vector<uint32_t> before;
  for (uint64_t k = 0; k < 10000; ++k) before.push_back(w1->pick({k * 0x9e3779b97f4a7c15ULL, {}}));
  tp.backend(3).health().setAdmin(health::AdminState::Maint);
  std::map<uint32_t, int> moved_to;
  for (uint64_t k = 0; k < 10000; ++k) {
    const uint64_t h = k * 0x9e3779b97f4a7c15ULL;
    const uint32_t b = w1->pick({h, {}});
    ASSERT_NE(b, 3u);
    ASSERT_EQ(b, w2->pick({h, {}}));
    if (before[k] != 3) {
      ASSERT_EQ(b, before[k]);
    } else {
      ++moved_to[b];
    }
  }
  EXPECT_GE(moved_to.size(), 5u);  // a dead backend's keys spread over the survivors
}

TEST(MaglevSelectorTest, TriedBackendIsSkippedDeterministically) {
  TestPool tp(Algorithm::Maglev, std::vector<uint32_t>(4, 1));
  auto s = makeSelector(tp.pool(), 1);
  const uint64_t h = 12345;
  const uint32_t first = s->pick({h, {}});
  const uint32_t tried[] = {first};
  const uint32_t second = s->pick({h, tried});
  EXPECT_NE(second, first);
  EXPECT_EQ(second, s->pick({h, tried}));
}

// ---- properties every algorithm shares ----

class AllSelectorsTest : public ::testing::TestWithParam<Algorithm> {};

TEST_P(AllSelectorsTest, RetriesVisitEveryEligibleBackendOnceThenReturnNoBackend) {
  TestPool tp(GetParam(), {2, 1, 0, 3, 1, 1});
  tp.backend(4).health().setAdmin(health::AdminState::Maint);  // with weight-0 backend 2: four eligible
  auto s = makeSelector(tp.pool(), 5);
  for (uint64_t key = 0; key < 50; ++key) {
    std::vector<uint32_t> tried;
    for (;;) {
      const uint32_t b = s->pick({key * 0x9e3779b97f4a7c15ULL, tried});
      if (b == kNoBackend) break;
      ASSERT_TRUE(tp.backend(b).eligible({})) << b;
      ASSERT_EQ(std::count(tried.begin(), tried.end(), b), 0) << b;
      tried.push_back(b);
      ASSERT_LE(tried.size(), 4u);
    }
    std::sort(tried.begin(), tried.end());
    EXPECT_EQ(tried, (std::vector<uint32_t>{0, 1, 3, 5}));
  }
}

TEST_P(AllSelectorsTest, AllUnhealthyGivesNoBackend) {
  TestPool tp(GetParam(), {1, 1, 1});
  for (size_t i = 0; i < 3; ++i) tp.backend(i).health().setAdmin(health::AdminState::Maint);
  auto s = makeSelector(tp.pool(), 5);
  EXPECT_EQ(s->pick({42, {}}), kNoBackend);
  tp.backend(1).health().setAdmin(health::AdminState::Ready);
  EXPECT_EQ(s->pick({42, {}}), 1u);
}

TEST_P(AllSelectorsTest, EmptyPoolGivesNoBackend) {
  TestPool tp(GetParam(), {});
  auto s = makeSelector(tp.pool(), 5);
  EXPECT_EQ(s->pick({42, {}}), kNoBackend);
}

TEST_P(AllSelectorsTest, PickDoesNotAllocate) {
  TestPool tp(GetParam(), std::vector<uint32_t>(16, 1));
  tp.backend(3).health().setAdmin(health::AdminState::Maint);
  auto s = makeSelector(tp.pool(), 5);
  const uint32_t tried[] = {1, 2};
  const long before = test::g_allocations.load();
  uint64_t sink = 0;
  for (uint64_t k = 0; k < 1000; ++k) sink += s->pick({k, tried});
  EXPECT_EQ(test::g_allocations.load(), before);
  EXPECT_NE(sink, 0u);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, AllSelectorsTest,
                         ::testing::Values(Algorithm::RoundRobin, Algorithm::LeastConn,
                                           Algorithm::PowerOfTwo, Algorithm::Maglev),
                         [](const ::testing::TestParamInfo<Algorithm>& param_info) {
                           switch (param_info.param) {
                             case Algorithm::RoundRobin: return std::string("RoundRobin");
                             case Algorithm::LeastConn: return std::string("LeastConn");
                             case Algorithm::PowerOfTwo: return std::string("PowerOfTwo");
                             case Algorithm::Maglev: return std::string("Maglev");
                           }
                           return std::string("Unknown");
                         });

// Guards the no-allocation tests above: the counter must see an ordinary allocation.
TEST(AllocationCounterTest, SeesHeapAllocations) {
  const long before = test::g_allocations.load();
  std::vector<std::string> v(static_cast<size_t>(::testing::UnitTest::GetInstance()->random_seed() % 2 + 3),
                             std::string(100, 'x'));
  EXPECT_GT(test::g_allocations.load(), before);
  EXPECT_GE(v.size(), 3u);
}

// ---- hashKey ----

TEST(HashKeyTest, KindsAreSeparateAndCombinationUsesBoth) {
  const std::string_view addr("\x0a\x00\x00\x01", 4);
  const uint64_t sni = hashKey(HashKey::Sni, "a.example.org", addr);
  const uint64_t ip = hashKey(HashKey::ClientIp, "a.example.org", addr);
  const uint64_t both = hashKey(HashKey::SniAndClientIp, "a.example.org", addr);
  EXPECT_NE(sni, ip);
  EXPECT_NE(both, sni);
  EXPECT_NE(both, ip);
  // Each kind ignores the field it does not use ...
  EXPECT_EQ(sni, hashKey(HashKey::Sni, "a.example.org", "other"));
  EXPECT_EQ(ip, hashKey(HashKey::ClientIp, "other", addr));
  // ... the combination depends on both.
  EXPECT_NE(both, hashKey(HashKey::SniAndClientIp, "b.example.org", addr));
  EXPECT_NE(both, hashKey(HashKey::SniAndClientIp, "a.example.org", "other"));
  // The same bytes as SNI or as address do not collide.
  EXPECT_NE(hashKey(HashKey::Sni, "abcd", ""), hashKey(HashKey::ClientIp, "", "abcd"));
  // The field boundary counts.
  EXPECT_NE(hashKey(HashKey::SniAndClientIp, "ab", "c"), hashKey(HashKey::SniAndClientIp, "a", "bc"));
}

}  // namespace
}  // namespace ringlb::balancer
