#include "balancer/worker.h"

#include <pthread.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "balancer/proxy_connection.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "core/log.h"

namespace ringlb::balancer {

Worker::Worker(unsigned id, Runtime& runtime, const core::UringFeatures& features,
               std::vector<ListenSocket> sockets)
    : id_(id), runtime_(runtime), features_(features), sockets_(std::move(sockets)),
      accept_armed_(sockets_.size(), false) {}

Worker::~Worker() { join(); }

void Worker::start() {
  thread_ = std::thread([this] { threadMain(); });
}

bool Worker::waitReady() {
  while (ready_.load(std::memory_order_acquire) == 0) ready_.wait(0, std::memory_order_acquire);
  return ready_.load() == 1;
}

void Worker::requestStop() {
  if (stop_fd_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
  }
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::threadMain() {
  char name[16];
  std::snprintf(name, sizeof(name), "ringlb-w%u", id_);
  pthread_setname_np(pthread_self(), name);
  bool ok = init();
  ready_.store(ok ? 1 : -1, std::memory_order_release);
  ready_.notify_all();
  if (!ok) return;
  loop_.run();
  core::log().debug("worker {} exited", id_);
}

bool Worker::init() {
  const GlobalConfig& global = runtime_.config.global;
  core::UringLoopOptions options;
  options.buffer_count = global.buffers_per_worker;
  options.buffer_size = global.buffer_size;
  if (!loop_.init(options, features_, &error_)) {
    error_ = "worker " + std::to_string(id_) + ": " + error_;
    return false;
  }
  slot_ = loop_.attach(this);
  drain_timer_.handler = accept_retry_timer_.handler = this;
  drain_timer_.kind = kDrainTimer;
  accept_retry_timer_.kind = kAcceptRetryTimer;
  for (const Pool& pool : runtime_.pools) selectors_.push_back(makeSelector(pool, 0x9e3779b97f4a7c15ull * (id_ + 1)));
  relay_ = global.relay;
  if (!initTls()) return false;
  stop_fd_ = core::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!stop_fd_) {
    error_ = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  loop_.readEventFd(slot_, kStopRead, stop_fd_.get(), &stop_value_);
  for (size_t i = 0; i < sockets_.size(); ++i) armAccept(i);
  return true;
}

bool Worker::initTls() {
  const Runtime& rt = runtime_;
  server_tls_.resize(rt.listeners.size());
  for (size_t i = 0; i < rt.listeners.size(); ++i) {
    const ListenerTls& material = rt.listener_tls[i];
    if (!material.certificates) continue;
    server_tls_[i] = tls::ServerContext::create(rt.config.listeners[i].tls, material.certificates,
                                                material.ticket_keys, &error_);
    if (!server_tls_[i]) {
      error_ = "worker " + std::to_string(id_) + ": listener " + rt.config.listeners[i].name + ": " + error_;
      return false;
    }
  }
  client_tls_.resize(rt.pools.size());
  backend_sessions_.resize(rt.pools.size());
  for (size_t i = 0; i < rt.pools.size(); ++i) {
    const PoolTls& material = rt.pool_tls[i];
    if (!material.credentials) continue;
    client_tls_[i] = tls::ClientContext::create(rt.pools[i].config->tls, material.credentials, &error_);
    if (!client_tls_[i]) {
      error_ = "worker " + std::to_string(id_) + ": pool " + rt.pools[i].name + ": " + error_;
      return false;
    }
    backend_sessions_[i] = std::vector<tls::BackendSessionSlot>(rt.pools[i].backends.size());
  }
  return true;
}

tls::BackendSessionSlot* Worker::backendSession(uint32_t pool, uint32_t backend) {
  if (backend_sessions_[pool].empty()) return nullptr;  // ClientContext honours session_reuse
  return &backend_sessions_[pool][backend];
}

void Worker::armAccept(size_t i) {
  if (accept_armed_[i] || !sockets_[i].fd) return;
  accept_armed_[i] = true;
  loop_.acceptMultishot(slot_, static_cast<uint8_t>(kAcceptBase + i), sockets_[i].fd.get());
}

void Worker::onCompletion(uint8_t op, const core::Completion& completion) {
  if (op == kStopRead) {
    beginDrain();
  } else if (op >= kAcceptBase) {
    onAccept(op - kAcceptBase, completion);
  }
  maybeExit();
}

namespace {

// Takes one of `active`'s slots unless `limit` (0 = none) is reached; a refusal is counted
// in `rejected` and logged at the 1st, 2nd, 4th, 8th... one (bounded volume under a flood).
bool takeSlot(std::atomic<uint32_t>& active, uint32_t limit, std::atomic<uint64_t>& rejected,
              std::string_view scope) {
  if (active.fetch_add(1, std::memory_order_relaxed) < limit || limit == 0) return true;
  active.fetch_sub(1, std::memory_order_relaxed);
  uint64_t n = rejected.fetch_add(1, std::memory_order_relaxed);
  if ((n & (n + 1)) == 0)
    core::log().warn("{}: max_connections={} reached: closing new connection ({} so far)", scope, limit, n + 1);
  return false;
}

}  // namespace

bool Worker::admit(ListenerRuntime& listener) {
  if (!takeSlot(runtime_.active, runtime_.config.global.max_connections, runtime_.rejected_global_limit, "global"))
    return false;
  if (!takeSlot(listener.stats.active, listener.config->max_connections, listener.stats.rejected_limit,
                "listener " + listener.config->name)) {
    runtime_.active.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Worker::onAccept(size_t i, const core::Completion& completion) {
  ListenerRuntime& listener = *runtime_.listeners[sockets_[i].listener];
  if (completion.res >= 0) {
    int fd = completion.res;
    if (stopping_ || !admit(listener)) {
      ::close(fd);
    } else {
      listener.stats.accepted.fetch_add(1, std::memory_order_relaxed);
      stats_.connections.fetch_add(1, std::memory_order_relaxed);
      ProxyConnection* conn = free_;
      if (conn != nullptr) {
        free_ = conn->next;
      } else {
        all_connections_.push_back(std::make_unique<ProxyConnection>(*this));
        conn = all_connections_.back().get();
      }
      conn->prev = nullptr;
      conn->next = live_;
      if (live_) live_->prev = conn;
      live_ = conn;
      ++live_count_;
      conn->start(fd, listener);
    }
  }
  if (completion.more()) return;
  accept_armed_[i] = false;
  if (stopping_) {
    sockets_[i].fd.reset();  // the multishot accept is gone: stop listening
    return;
  }
  if (completion.res < 0 && completion.res != -ECANCELED) {
    // EMFILE/ENFILE/ENOMEM: back off instead of spinning; connections wait in the backlog.
    core::log().error("listener {}: accept failed: {}; retrying in 100ms", listener.config->name,
                      std::strerror(-completion.res));
    loop_.timers().schedule(accept_retry_timer_, loop_.now() + std::chrono::milliseconds(100));
    return;
  }
  armAccept(i);
}

void Worker::onTimer(uint8_t kind) {
  if (kind == kAcceptRetryTimer) {
    if (!stopping_)
      for (size_t i = 0; i < sockets_.size(); ++i) armAccept(i);
  } else if (kind == kDrainTimer) {
    if (live_count_ > 0)
      core::log().warn("worker {}: drain deadline reached, closing {} live connections", id_, live_count_);
    for (ProxyConnection* c = live_; c != nullptr;) {
      ProxyConnection* next = c->next;  // abort may recycle c synchronously
      c->abort(EndReason::Draining);
      c = next;
    }
  }
  maybeExit();
}

void Worker::beginDrain() {
  if (stopping_) return;
  stopping_ = true;
  loop_.timers().cancel(accept_retry_timer_);
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (accept_armed_[i]) {
      loop_.cancelOp(slot_, kCancelAccept, static_cast<uint8_t>(kAcceptBase + i));
    } else {
      sockets_[i].fd.reset();
    }
  }
  loop_.timers().schedule(drain_timer_, loop_.now() + runtime_.config.global.drain_timeout);
  core::log().info("worker {}: stopped accepting; draining {} connections (up to {} ms)", id_, live_count_,
                   runtime_.config.global.drain_timeout.count());
}

void Worker::maybeExit() {
  if (!stopping_ || live_count_ > 0) return;
  if (std::any_of(accept_armed_.begin(), accept_armed_.end(), [](bool b) { return b; })) return;
  if (loop_.inflight(slot_) > 0) return;
  loop_.timers().cancel(drain_timer_);
  loop_.stop();
}

void Worker::connectionClosed(ProxyConnection* conn) {
  if (conn->prev) conn->prev->next = conn->next;
  else live_ = conn->next;
  if (conn->next) conn->next->prev = conn->prev;
  conn->prev = nullptr;
  conn->next = free_;
  free_ = conn;
  --live_count_;
  maybeExit();
}

HelloBuffer* Worker::acquireHelloBuffer() {
  if (!spare_hello_.empty()) {
    HelloBuffer* b = spare_hello_.back().release();
    spare_hello_.pop_back();
    return b;
  }
  uint32_t max_hello = 0;
  for (const ListenerConfig& l : runtime_.config.listeners) max_hello = std::max(max_hello, l.client_hello_max);
  auto buffer = std::make_unique<HelloBuffer>();
  // Input: the hello plus its record headers (a hello split into small records carries more
  // header bytes) plus anything the client pipelined after it.
  buffer->input_capacity = max_hello + max_hello / 4 + 1024;
  buffer->scratch_capacity = max_hello;
  buffer->data = std::make_unique<uint8_t[]>(HelloBuffer::kHeadroom + buffer->input_capacity + buffer->scratch_capacity);
  return buffer.release();  // owned by the connection until releaseHelloBuffer()
}

void Worker::releaseHelloBuffer(HelloBuffer* buffer) {
  std::unique_ptr<HelloBuffer> owned(buffer);
  if (spare_hello_.size() < kMaxSpareHelloBuffers) spare_hello_.push_back(std::move(owned));
}

}  // namespace ringlb::balancer
