#include "balancer/maglev.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace ringlb::balancer {
namespace {

constexpr uint32_t kM = 65537;

std::vector<std::string> names(size_t n, const std::string& prefix = "backend-") {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

std::vector<MaglevBackend> inputs(const std::vector<std::string>& names,
                                  const std::vector<uint32_t>& weights = {}) {
  std::vector<MaglevBackend> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back({names[i], weights.empty() ? 1u : weights[i]});
  }
  return out;
}

std::vector<size_t> counts(const MaglevTable& table, size_t n) {
  std::vector<size_t> c(n, 0);
  for (uint32_t e : table.entries()) ++c.at(e);
  return c;
}

TEST(MaglevTest, EveryEntryNamesAValidBackend) {
  const auto n = names(10);
  MaglevTable table(inputs(n), kM);
  ASSERT_EQ(table.size(), kM);
  for (uint32_t e : table.entries()) ASSERT_LT(e, 10u);
}

TEST(MaglevTest, SameBackendsGiveTheSameTable) {
  const auto n = names(50);
  MaglevTable a(inputs(n), kM);
  MaglevTable b(inputs(n), kM);
  EXPECT_EQ(a.entries(), b.entries());
}

// Unweighted Maglev gives every backend one entry per round, so shares differ by at most one
// entry: far inside "a few percent of M/N".
TEST(MaglevTest, EntriesAreBalanced) {
  for (size_t n : {3u, 10u, 100u, 1000u}) {
    const auto ns = names(n);
    MaglevTable table(inputs(ns), kM);
    const double ideal = static_cast<double>(kM) / static_cast<double>(n);
    for (size_t c : counts(table, n)) {
      EXPECT_LE(std::abs(static_cast<double>(c) - ideal), 1.0) << "n=" << n;
    }
  }
}

// The property consistent hashing exists for: removing one of N backends moves its own keys
// and (almost) nothing else. Maglev trades a little extra disruption for balance; the
// paper measures it in the low percent for M = 65537, so allow 1/N plus a small margin.
TEST(MaglevTest, RemovingOneBackendMovesOnlyItsKeys) {
  for (size_t n : {10u, 100u}) {
    const auto before_names = names(n);
    const size_t removed = n / 3;
    std::vector<std::string> after_names = before_names;
    after_names.erase(after_names.begin() + static_cast<std::ptrdiff_t>(removed));
    MaglevTable before(inputs(before_names), kM);
    MaglevTable after(inputs(after_names), kM);

    // Table entries, compared by backend name.
    size_t moved_entries = 0;
    size_t moved_foreign = 0;  // entries that did not belong to the removed backend
    for (size_t i = 0; i < kM; ++i) {
      const std::string& was = before_names[before.entries()[i]];
      const std::string& now = after_names[after.entries()[i]];
      if (was != now) {
        ++moved_entries;
        if (before.entries()[i] != removed) ++moved_foreign;
      }
    }
    const double entry_share = static_cast<double>(moved_entries) / kM;
    const double foreign_share = static_cast<double>(moved_foreign) / kM;
    EXPECT_LE(entry_share, 1.0 / static_cast<double>(n) + 0.02) << "n=" << n;
    EXPECT_LE(foreign_share, 0.02) << "n=" << n;

    // 100k random keys.
    std::mt19937_64 rng(42);
    size_t moved_keys = 0;
    size_t keys_of_removed = 0;
    constexpr size_t kKeys = 100000;
    for (size_t k = 0; k < kKeys; ++k) {
      const uint64_t h = rng();
      const uint32_t b = before.lookup(h);
      if (b == removed) ++keys_of_removed;
      if (before_names[b] != after_names[after.lookup(h)]) ++moved_keys;
    }
    EXPECT_GE(moved_keys, keys_of_removed);  // every key of the removed backend moved
    EXPECT_LE(static_cast<double>(moved_keys) / kKeys, 1.0 / static_cast<double>(n) + 0.02)
        << "n=" << n;
    std::printf("[ info     ] n=%zu remove 1: entries moved %.4f (ideal %.4f), of others' %.4f; "
                "keys moved %.4f\n",
                n, entry_share, 1.0 / static_cast<double>(n), foreign_share,
                static_cast<double>(moved_keys) / kKeys);
  }
}

TEST(MaglevTest, AddingOneBackendMovesAboutOneShare) {
  const size_t n = 20;
  const auto before_names = names(n);
  auto after_names = before_names;
  after_names.push_back("backend-new");
  MaglevTable before(inputs(before_names), kM);
  MaglevTable after(inputs(after_names), kM);
  size_t moved = 0;
  for (size_t i = 0; i < kM; ++i) {
    if (before_names[before.entries()[i]] != after_names[after.entries()[i]]) ++moved;
  }
  EXPECT_LE(static_cast<double>(moved) / kM, 1.0 / static_cast<double>(n + 1) + 0.02);
}

TEST(MaglevTest, WeightedShareFollowsWeights) {
  const auto ns = names(4);
  const std::vector<uint32_t> weights{1, 2, 3, 4};
  MaglevTable table(inputs(ns, weights), kM);
  const auto c = counts(table, 4);
  for (size_t i = 0; i < 4; ++i) {
    const double share = static_cast<double>(c[i]) / kM;
    EXPECT_NEAR(share, weights[i] / 10.0, 0.001) << "backend " << i;
  }
}

TEST(MaglevTest, LargeAndUnevenWeightsStillProportional) {
  const auto ns = names(3);
  const std::vector<uint32_t> weights{1, 1000, 100000};
  MaglevTable table(inputs(ns, weights), kM);
  const auto c = counts(table, 3);
  const double total = 101001.0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(static_cast<double>(c[i]), double{kM} * weights[i] / total, 2.0) << "backend " << i;
  }
}

TEST(MaglevTest, ZeroWeightBackendGetsNoEntries) {
  const auto ns = names(5);
  MaglevTable table(inputs(ns, {1, 0, 1, 1, 1}), kM);
  const auto c = counts(table, 5);
  EXPECT_EQ(c[1], 0u);
  EXPECT_EQ(c[0] + c[2] + c[3] + c[4], kM);
}

TEST(MaglevTest, AllZeroWeightsGiveAnEmptyTableThatReturnsNoBackend) {
  const auto ns = names(3);
  MaglevTable table(inputs(ns, {0, 0, 0}), kM);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.lookup(12345), UINT32_MAX);
  MaglevTable empty({}, kM);
  EXPECT_EQ(empty.lookup(1), UINT32_MAX);
}

TEST(MaglevTest, SmallPrimeTableIsFull) {
  const auto ns = names(3);
  MaglevTable table(inputs(ns), 7);
  ASSERT_EQ(table.size(), 7u);
  for (uint32_t e : table.entries()) EXPECT_LT(e, 3u);
}

}  // namespace
}  // namespace ringlb::balancer
