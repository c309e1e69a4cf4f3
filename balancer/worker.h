// A worker: one thread, one io_uring loop, its own SO_REUSEPORT listening sockets and its
// own connections. Shares only Runtimes (immutable + atomics) with other workers.
//
// Configuration generations (hot reload): the control thread builds a new Runtime and, for
// each worker, its TLS contexts, then hands them over with update(). The worker switches new
// connections to the new generation at once; each connection keeps the generation it started
// in until it ends, and an old generation is freed when its last connection has ended and
// its health checkers have stopped. Listening sockets whose address is still configured are
// kept (their multishot accept is never interrupted, so no connection is refused during a
// reload); removed ones are closed, new ones armed.
#pragma once

#include <atomic>
#include <mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "balancer/runtime.h"
#include "balancer/selector.h"
#include "core/features.h"
#include "core/unique_fd.h"
#include "core/uring_loop.h"

namespace ringlb::balancer {

class ProxyConnection;
}  // namespace ringlb::balancer

namespace ringlb::tls {
class ServerContext;
class ClientContext;
class BackendSessionSlot;
}  // namespace ringlb::tls

namespace ringlb::health {
class Checker;
}  // namespace ringlb::health

namespace ringlb::balancer {

// Memory for reading a ClientHello and replaying it: headroom for a PROXY header, the bytes
// read from the client, and the parser's reassembly scratch. Pooled per worker; held only
// until the hello has been replayed to the backend.
struct HelloBuffer {
  static constexpr uint32_t kHeadroom = 2048;  // >= kProxyV2MaxHeader (1866 with the SSL TLV)
  std::unique_ptr<uint8_t[]> data;
  uint32_t input_capacity = 0;
  uint32_t scratch_capacity = 0;
  uint8_t* input() { return data.get() + kHeadroom; }
  uint8_t* scratch() { return data.get() + kHeadroom + input_capacity; }
};

struct ListenSocket {
  uint32_t listener = 0;   // index into Runtime::listeners
  std::string key;         // identity across reloads (see listenKey())
  core::UniqueFd fd;       // in an update: empty = keep the worker's socket with this key
};

// The identity of a listening address across reloads: the normalized address, or for a
// kernel-chosen port (":0") the listener name too, so the same listener keeps its port.
std::string listenKey(const ListenerConfig& listener, const AddressSpec& bind);

// One worker's OpenSSL contexts for one generation (one SSL_CTX set per worker: no lock is
// shared with other workers). Built on the control thread so that a reload fails, if it
// must, before any worker sees it; null entries where a listener does not terminate / a pool
// does not re-encrypt / a pool's checks do not speak TLS.
struct WorkerTls {
  std::vector<std::unique_ptr<tls::ServerContext>> server;  // per listener
  std::vector<std::unique_ptr<tls::ClientContext>> client;  // per pool
  std::vector<std::unique_ptr<tls::ClientContext>> check;   // per pool
  WorkerTls();
  ~WorkerTls();
  static std::unique_ptr<WorkerTls> build(const Runtime& runtime, std::string* error);
};

// A generation as one worker uses it. Worker thread only.
class Generation {
 public:
  Generation(std::shared_ptr<Runtime> runtime, std::unique_ptr<WorkerTls> tls, uint64_t seed);
  ~Generation();

  Runtime& runtime() const { return *runtime_; }
  Selector& selector(uint32_t pool) { return *selectors_[pool]; }
  const tls::ServerContext* serverTls(uint32_t listener) const { return tls_->server[listener].get(); }
  const tls::ClientContext* clientTls(uint32_t pool) const { return tls_->client[pool].get(); }
  const tls::ClientContext* checkTls(uint32_t pool) const { return tls_->check[pool].get(); }
  // The session to resume with one backend (null if the pool does not re-encrypt).
  tls::BackendSessionSlot* backendSession(uint32_t pool, uint32_t backend);

  uint32_t connections = 0;   // live connections that started in this generation
  bool retired = false;       // a newer generation serves new connections
  std::vector<std::unique_ptr<health::Checker>> checkers;  // this worker's share of the backends
  uint32_t checkers_stopping = 0;
  bool checkers_stopped = false;  // stopCheckers() ran (it must run only once)

 private:
  std::shared_ptr<Runtime> runtime_;
  std::unique_ptr<WorkerTls> tls_;
  std::vector<std::unique_ptr<Selector>> selectors_;
  std::vector<std::vector<tls::BackendSessionSlot>> sessions_;  // [pool][backend]
};

// What the control thread hands a worker for a new generation.
struct GenerationUpdate {
  std::shared_ptr<Runtime> runtime;
  std::unique_ptr<WorkerTls> tls;
  std::vector<ListenSocket> sockets;  // every socket the worker should listen on afterwards
};

struct WorkerStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_in{0};   // client -> backend
  std::atomic<uint64_t> bytes_out{0};  // backend -> client
};

class Worker final : public core::CompletionHandler, public core::TimerHandler {
 public:
  Worker(unsigned id, unsigned worker_count, GenerationUpdate initial, const core::UringFeatures& features);
  ~Worker();

  // Starts the thread; init errors are reported through ready()/error().
  void start();
  // Blocks until the worker has initialised (true) or failed (false, error()).
  bool waitReady();
  const std::string& error() const { return error_; }
  // Thread-safe: stop accepting, let connections finish for drain_timeout, then exit.
  void requestStop();
  void join();
  // Thread-safe: switch to a new generation (see the comment at the top).
  void update(GenerationUpdate update);

  // For connections (worker thread only).
  core::EventLoop& loop() { return loop_; }
  // The generation new connections start in; a connection takes a reference with
  // acquireGeneration() and gives it back in connectionClosed().
  Generation& current() { return *generations_.back(); }
  HelloBuffer* acquireHelloBuffer();
  void releaseHelloBuffer(HelloBuffer* buffer);
  void connectionClosed(ProxyConnection* conn, Generation* generation);
  bool draining() const { return stopping_; }
  unsigned id() const { return id_; }
  WorkerStats& stats() { return stats_; }

  void onCompletion(uint8_t op, const core::Completion& completion) override;
  void onTimer(uint8_t kind) override;

 private:
  enum Op : uint8_t { kStopRead = 1, kCancelAccept = 2, kUpdateRead = 3, kAcceptBase = 16 };  // accept op = kAcceptBase + socket index
  enum TimerKind : uint8_t { kDrainTimer = 1, kAcceptRetryTimer };
  static constexpr size_t kMaxSockets = 256 - kAcceptBase;

  void threadMain();
  bool init();
  void applyUpdates();
  void updateSockets(std::vector<ListenSocket> sockets);
  void closeSocket(size_t socket_index);
  void startCheckers(Generation& generation);
  void stopCheckers(Generation& generation);
  void maybeFreeGenerations();
  void armAccept(size_t socket_index);
  void onAccept(size_t socket_index, const core::Completion& completion);
  bool admit(ListenerRuntime& listener);
  void beginDrain();
  void maybeExit();

  unsigned id_;
  unsigned worker_count_;
  core::UringFeatures features_;
  GenerationUpdate initial_;
  // The last one is current; older ones are retired and freed once unused.
  std::vector<std::unique_ptr<Generation>> generations_;
  uint64_t generation_seq_ = 0;
  std::vector<ListenSocket> sockets_;   // slots are stable: the accept op names the index
  std::vector<bool> accept_armed_;
  std::vector<bool> closing_;           // removed by a reload: close once its accept has ended
  core::UringLoop loop_;
  core::SlotRef slot_{};

  core::UniqueFd stop_fd_;
  uint64_t stop_value_ = 0;
  core::UniqueFd update_fd_;
  uint64_t update_value_ = 0;
  std::mutex mailbox_mu_;
  std::vector<GenerationUpdate> mailbox_;
  bool stopping_ = false;
  core::Timer drain_timer_{};
  core::Timer accept_retry_timer_{};

  std::vector<std::unique_ptr<ProxyConnection>> all_connections_;
  ProxyConnection* free_ = nullptr;
  ProxyConnection* live_ = nullptr;
  size_t live_count_ = 0;
  // Spare hello buffers; at most kMaxSpareHelloBuffers are kept after a burst (e.g. a
  // slowloris wave), the rest are freed.
  static constexpr size_t kMaxSpareHelloBuffers = 256;
  std::vector<std::unique_ptr<HelloBuffer>> spare_hello_;
  uint32_t hello_max_ = 0;  // the current generation's largest client_hello_max

  WorkerStats stats_;
  std::thread thread_;
  std::atomic<int> ready_{0};  // 0 pending, 1 ok, -1 failed
  std::string error_;
};

}  // namespace ringlb::balancer
