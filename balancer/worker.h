// A worker: one thread, one io_uring loop, its own SO_REUSEPORT listening sockets and its
// own connections. Shares only the Runtime (immutable + atomics) with other workers.
#pragma once

#include <atomic>
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
  core::UniqueFd fd;
};

struct WorkerStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_in{0};   // client -> backend
  std::atomic<uint64_t> bytes_out{0};  // backend -> client
};

class Worker final : public core::CompletionHandler, public core::TimerHandler {
 public:
  Worker(unsigned id, Runtime& runtime, const core::UringFeatures& features,
         std::vector<ListenSocket> sockets);
  ~Worker();

  // Starts the thread; init errors are reported through ready()/error().
  void start();
  // Blocks until the worker has initialised (true) or failed (false, error()).
  bool waitReady();
  const std::string& error() const { return error_; }
  // Thread-safe: stop accepting, let connections finish for drain_timeout, then exit.
  void requestStop();
  void join();

  // For connections (worker thread only).
  core::EventLoop& loop() { return loop_; }
  Runtime& runtime() { return runtime_; }
  Selector& selector(uint32_t pool) { return *selectors_[pool]; }
  // This worker's TLS contexts (one SSL_CTX set per worker: no lock shared with others);
  // null where the listener does not terminate / the pool does not re-encrypt.
  const tls::ServerContext* serverTls(uint32_t listener) const { return server_tls_[listener].get(); }
  const tls::ClientContext* clientTls(uint32_t pool) const { return client_tls_[pool].get(); }
  // The session to resume with one backend (per worker; null if the pool does not re-encrypt).
  tls::BackendSessionSlot* backendSession(uint32_t pool, uint32_t backend);
  HelloBuffer* acquireHelloBuffer();
  void releaseHelloBuffer(HelloBuffer* buffer);
  void connectionClosed(ProxyConnection* conn);
  bool draining() const { return stopping_; }
  RelayKind relayKind() const { return relay_; }
  unsigned id() const { return id_; }
  WorkerStats& stats() { return stats_; }

  void onCompletion(uint8_t op, const core::Completion& completion) override;
  void onTimer(uint8_t kind) override;

 private:
  enum Op : uint8_t { kStopRead = 1, kCancelAccept = 2, kAcceptBase = 16 };  // accept op = kAcceptBase + socket index
  enum TimerKind : uint8_t { kDrainTimer = 1, kAcceptRetryTimer };

  void threadMain();
  bool init();
  bool initTls();
  void armAccept(size_t socket_index);
  void onAccept(size_t socket_index, const core::Completion& completion);
  bool admit(ListenerRuntime& listener);
  void beginDrain();
  void maybeExit();

  unsigned id_;
  Runtime& runtime_;
  core::UringFeatures features_;
  std::vector<ListenSocket> sockets_;
  std::vector<bool> accept_armed_;
  core::UringLoop loop_;
  core::SlotRef slot_{};
  std::vector<std::unique_ptr<Selector>> selectors_;
  std::vector<std::unique_ptr<tls::ServerContext>> server_tls_;
  std::vector<std::unique_ptr<tls::ClientContext>> client_tls_;
  std::vector<std::vector<tls::BackendSessionSlot>> backend_sessions_;  // [pool][backend]
  RelayKind relay_ = RelayKind::Auto;

  core::UniqueFd stop_fd_;
  uint64_t stop_value_ = 0;
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

  WorkerStats stats_;
  std::thread thread_;
  std::atomic<int> ready_{0};  // 0 pending, 1 ok, -1 failed
  std::string error_;
};

}  // namespace ringlb::balancer
