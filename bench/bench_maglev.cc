// Maglev table build and lookup, and every selector's pick(), on the data structures the
// proxy uses (pools from buildPools()).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "balancer/backend.h"
#include "balancer/maglev.h"
#include "balancer/selector.h"

namespace {

using namespace ringlb::balancer;

constexpr uint32_t kTableSize = 65537;

std::vector<std::string> backendNames(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back("backend-" + std::to_string(i));
  return out;
}

void BM_MaglevBuild(benchmark::State& state) {
  const auto names = backendNames(static_cast<size_t>(state.range(0)));
  std::vector<MaglevBackend> inputs;
  for (const auto& n : names) inputs.push_back({n, 1});
  for (auto _ : state) {
    MaglevTable table(inputs, kTableSize);
    benchmark::DoNotOptimize(table.entries().data());
  }
}
BENCHMARK(BM_MaglevBuild)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_MaglevBuildWeighted(benchmark::State& state) {
  const auto names = backendNames(static_cast<size_t>(state.range(0)));
  std::vector<MaglevBackend> inputs;
  for (size_t i = 0; i < names.size(); ++i) inputs.push_back({names[i], static_cast<uint32_t>(1 + i % 10)});
  for (auto _ : state) {
    MaglevTable table(inputs, kTableSize);
    benchmark::DoNotOptimize(table.entries().data());
  }
}
BENCHMARK(BM_MaglevBuildWeighted)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_MaglevLookup(benchmark::State& state) {
  const auto names = backendNames(100);
  std::vector<MaglevBackend> inputs;
  for (const auto& n : names) inputs.push_back({n, 1});
  MaglevTable table(inputs, kTableSize);
  uint64_t h = 0x243f6a8885a308d3ULL;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;  // new key each time
    benchmark::DoNotOptimize(table.lookup(h));
  }
}
BENCHMARK(BM_MaglevLookup);

void BM_HashKeySni(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(hashKey(HashKey::Sni, "api.internal.example.org", ""));
  }
}
BENCHMARK(BM_HashKeySni);

// One pool of state.range(0) backends, one per-worker selector.
struct Fixture {
  Config config;
  std::vector<Pool> pools;

  Fixture(Algorithm algorithm, size_t n) {
    PoolConfig pool;
    pool.name = "bench";
    pool.algorithm = algorithm;
    pool.affinity = false;
    for (size_t i = 0; i < n; ++i) {
      BackendConfig b;
      b.name = "backend-" + std::to_string(i);
      b.address.text = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":443";
      b.weight = static_cast<uint32_t>(1 + i % 3);
      pool.backends.push_back(b);
    }
    config.pools.push_back(pool);
    pools = buildPools(config);
  }
};

void pickBench(benchmark::State& state, Algorithm algorithm) {
  Fixture f(algorithm, static_cast<size_t>(state.range(0)));
  auto selector = makeSelector(f.pools[0], 1);
  uint64_t h = 0x13198a2e03707344ULL;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(selector->pick({h, {}}));
  }
}

void BM_PickRoundRobin(benchmark::State& state) { pickBench(state, Algorithm::RoundRobin); }
void BM_PickLeastConn(benchmark::State& state) { pickBench(state, Algorithm::LeastConn); }
void BM_PickPowerOfTwo(benchmark::State& state) { pickBench(state, Algorithm::PowerOfTwo); }
void BM_PickMaglev(benchmark::State& state) { pickBench(state, Algorithm::Maglev); }
BENCHMARK(BM_PickRoundRobin)->Arg(10)->Arg(100);
BENCHMARK(BM_PickLeastConn)->Arg(10)->Arg(100);
BENCHMARK(BM_PickPowerOfTwo)->Arg(10)->Arg(100);
BENCHMARK(BM_PickMaglev)->Arg(10)->Arg(100);

// Maglev when the key's backend is down: the rehash fallback path.
void BM_PickMaglevFallback(benchmark::State& state) {
  Fixture f(Algorithm::Maglev, 100);
  for (size_t i = 0; i < 100; i += 2) f.pools[0].backends[i]->health().setAdmin(ringlb::health::AdminState::Maint);  // half down
  auto selector = makeSelector(f.pools[0], 1);
  uint64_t h = 0x13198a2e03707344ULL;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(selector->pick({h, {}}));
  }
}
BENCHMARK(BM_PickMaglevFallback);

}  // namespace
