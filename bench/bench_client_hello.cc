// Micro-benchmarks for the TLS wire parsers on real OpenSSL output: parseClientHello on a
// TLS 1.3 hello in one record and split over many records (reassembly into scratch), the
// NeedMore path a trickling client hits, and ServerFlightObserver on a TLS 1.2 server flight.
#include <benchmark/benchmark.h>

#include <vector>

#include "tests/unit/tls/tls_test_support.h"
#include "tls/client_hello.h"
#include "tls/server_flight.h"

namespace {

using namespace ringlb::tls;               // NOLINT: benchmark file
using namespace ringlb::tls::test_support;  // NOLINT: benchmark file

const Bytes& tls13Hello() {
  static const Bytes hello = [] {
    ClientOptions options;
    options.sni = "www.example.com";
    options.alpn = {"h2", "http/1.1"};
    return makeClientHello(options);
  }();
  return hello;
}

const Bytes& tls12ServerFlight() {
  static const Bytes flight = [] {
    ClientOptions options;
    options.max_version = TLS1_2_VERSION;
    options.sni = "www.example.com";
    SslCtxPtr client = makeClientCtx(options);
    SslCtxPtr server = makeServerCtx({.max_version = TLS1_2_VERSION, .tickets = true});
    Handshake hs = runHandshake(client.get(), options, server.get());
    check(hs.ok, "TLS 1.2 handshake");
    return hs.server_to_client;
  }();
  return flight;
}

void parseLoop(benchmark::State& state, const Bytes& input, ParseStatus expected) {
  std::vector<uint8_t> scratch(ParseLimits{}.max_hello_bytes);
  const ParseLimits limits;
  ClientHelloInfo info;
  if (parseClientHello(input, scratch, limits, info) != expected) {
    state.SkipWithError("unexpected parse status");
    return;
  }
  for (auto _ : state) {
    const ParseStatus status = parseClientHello(input, scratch, limits, info);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(info.sni.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input.size()));
  state.counters["input_bytes"] = static_cast<double>(input.size());
}

void BM_ParseTls13HelloSingleRecord(benchmark::State& state) {
  parseLoop(state, tls13Hello(), ParseStatus::Complete);
}
BENCHMARK(BM_ParseTls13HelloSingleRecord);

// The same hello in records of Arg bytes: walk + reassembly into scratch + parse.
void BM_ParseTls13HelloManyRecords(benchmark::State& state) {
  const Bytes split = rechunk(tls13Hello(), {static_cast<size_t>(state.range(0))});
  parseLoop(state, split, ParseStatus::Complete);
}
BENCHMARK(BM_ParseTls13HelloManyRecords)->Arg(1)->Arg(16)->Arg(128);

// A hello cut in half: NeedMore must cost only the record-header walk.
void BM_ParseTls13HelloNeedMore(benchmark::State& state) {
  const Bytes& hello = tls13Hello();
  const Bytes half(hello.begin(), hello.begin() + static_cast<long>(hello.size() / 2));
  parseLoop(state, half, ParseStatus::NeedMore);
}
BENCHMARK(BM_ParseTls13HelloNeedMore);

// A TLS 1.2 full-handshake server flight (ServerHello, Certificate, ServerKeyExchange,
// ServerHelloDone, NewSessionTicket, ChangeCipherSpec, Finished) fed in Arg-byte segments.
void BM_ServerFlightTls12(benchmark::State& state) {
  const Bytes& flight = tls12ServerFlight();
  const size_t segment = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    ServerFlightObserver observer;
    for (size_t pos = 0; pos < flight.size() && !observer.done(); pos += segment) {
      observer.feed({flight.data() + pos, std::min(segment, flight.size() - pos)});
    }
    if (!observer.hasTicket() || observer.malformed()) {
      state.SkipWithError("observer did not learn the ticket");
      return;
    }
    benchmark::DoNotOptimize(observer.ticketDigest());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * flight.size()));
  state.counters["flight_bytes"] = static_cast<double>(flight.size());
}
BENCHMARK(BM_ServerFlightTls12)->Arg(1)->Arg(1448)->Arg(64 * 1024);

}  // namespace
