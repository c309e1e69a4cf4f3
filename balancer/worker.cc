#include "balancer/worker.h"

#include <pthread.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "balancer/proxy_connection.h"
#include "health/checker.h"
#include "tls/client_context.h"
#include "tls/ktls_keys.h"
#include "tls/server_context.h"
#include "core/log.h"

namespace ringlb::balancer {

std::string listenKey(const ListenerConfig& listener, const AddressSpec& bind) {
  auto address = core::SocketAddress::parse(bind.text);
  std::string normalized = address ? address->toString() : bind.text;
  bool kernel_port = !normalized.starts_with("unix:") && normalized.ends_with(":0");
  return kernel_port ? listener.name + "|" + normalized : normalized;
}

WorkerTls::WorkerTls() = default;
WorkerTls::~WorkerTls() = default;

std::unique_ptr<WorkerTls> WorkerTls::build(const Runtime& rt, std::string* error) {
  auto out = std::make_unique<WorkerTls>();
  // kTLS needs the TLS 1.3 traffic secrets (tls/ktls_keys.h); capturing them costs a little
  // per handshake, so only where the kernel can take the keys.
  const bool ktls = rt.config.crypto.ktls != tls::KtlsMode::Off && tls::ktlsCaps().usable();
  out->server.resize(rt.listeners.size());
  for (size_t i = 0; i < rt.listeners.size(); ++i) {
    const ListenerTls& material = rt.listener_tls[i];
    if (!material.certificates) continue;
    out->server[i] = tls::ServerContext::create(rt.config.listeners[i].tls, material.certificates,
                                                material.ticket_keys, error,
                                                material.sessions);
    if (!out->server[i]) {
      *error = "listener " + rt.config.listeners[i].name + ": " + *error;
      return nullptr;
    }
    if (ktls) {
      for (size_t j = 0; j < material.certificates->identities().size(); ++j)
        tls::captureKtlsSecrets(out->server[i]->contextFor(j));
    }
    if (rt.config.crypto.async) out->server[i]->enableAsync();
  }
  out->client.resize(rt.pools.size());
  out->check.resize(rt.pools.size());
  for (size_t i = 0; i < rt.pools.size(); ++i) {
    const PoolConfig& pc = *rt.pools[i].config;
    if (const PoolTls& material = rt.pool_tls[i]; material.credentials) {
      out->client[i] = tls::ClientContext::create(pc.tls, material.credentials, error);
      if (!out->client[i]) {
        *error = "pool " + pc.name + ": " + *error;
        return nullptr;
      }
      if (ktls) tls::captureKtlsSecrets(out->client[i]->context());
      if (rt.config.crypto.async) out->client[i]->enableAsync();
    }
    if (const PoolTls& material = rt.check_tls[i]; material.credentials) {
      out->check[i] = tls::ClientContext::create(pc.health.tls, material.credentials, error);
      if (!out->check[i]) {
        *error = "pool " + pc.name + " health check: " + *error;
        return nullptr;
      }
    }
  }
  return out;
}

Generation::Generation(std::shared_ptr<Runtime> runtime, std::unique_ptr<WorkerTls> tls, uint64_t seed)
    : runtime_(std::move(runtime)), tls_(std::move(tls)) {
  for (const Pool& pool : runtime_->pools) selectors_.push_back(makeSelector(pool, seed));
  sessions_.resize(runtime_->pools.size());
  for (size_t i = 0; i < runtime_->pools.size(); ++i) {
    if (tls_->client[i]) sessions_[i] = std::vector<tls::BackendSessionSlot>(runtime_->pools[i].backends.size());
  }
}

// Checkers first: they reference this generation's configuration and TLS contexts (all are
// stopped and idle by now; see Worker::maybeFreeGenerations).
Generation::~Generation() { checkers.clear(); }

tls::BackendSessionSlot* Generation::backendSession(uint32_t pool, uint32_t backend) {
  if (sessions_[pool].empty()) return nullptr;  // ClientContext honours session_reuse
  return &sessions_[pool][backend];
}

Worker::Worker(unsigned id, unsigned worker_count, GenerationUpdate initial, const core::UringFeatures& features)
    : id_(id), worker_count_(worker_count), features_(features), initial_(std::move(initial)) {}

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

void Worker::update(GenerationUpdate update) {
  {
    std::lock_guard lock(mailbox_mu_);
    mailbox_.push_back(std::move(update));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(update_fd_.get(), &one, sizeof(one));
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
  // Every connection has ended; stop what is left and free the generations.
  generations_.clear();
  core::log().debug("worker {} exited", id_);
}

bool Worker::init() {
  const GlobalConfig& global = initial_.runtime->config.global;
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
  stop_fd_ = core::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  update_fd_ = core::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!stop_fd_ || !update_fd_) {
    error_ = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  loop_.readEventFd(slot_, kStopRead, stop_fd_.get(), &stop_value_);
  loop_.readEventFd(slot_, kUpdateRead, update_fd_.get(), &update_value_);
  {
    std::lock_guard lock(mailbox_mu_);
    mailbox_.insert(mailbox_.begin(), std::move(initial_));
  }
  applyUpdates();
  return true;
}

void Worker::applyUpdates() {
  std::vector<GenerationUpdate> updates;
  {
    std::lock_guard lock(mailbox_mu_);
    updates.swap(mailbox_);
  }
  for (GenerationUpdate& update : updates) {
    if (!generations_.empty()) {
      Generation& old = current();
      old.retired = true;
      stopCheckers(old);
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull * (id_ + 1) + ++generation_seq_;
    generations_.push_back(std::make_unique<Generation>(std::move(update.runtime), std::move(update.tls), seed));
    // Hello buffers go only to new connections, which start in the current generation.
    hello_max_ = 0;
    for (const ListenerConfig& l : current().runtime().config.listeners)
      hello_max_ = std::max(hello_max_, l.client_hello_max);
    if (!stopping_) {
      updateSockets(std::move(update.sockets));
      startCheckers(current());
    }
  }
  maybeFreeGenerations();
}

// Sockets whose key is in `sockets` are kept (with the new listener index); the others are
// closed once their accept has ended; new ones are armed.
void Worker::updateSockets(std::vector<ListenSocket> sockets) {
  std::vector<bool> keep(sockets_.size(), false);
  for (ListenSocket& wanted : sockets) {
    auto it = std::find_if(sockets_.begin(), sockets_.end(), [&](const ListenSocket& s) {
      return s.fd && s.key == wanted.key && !closing_[static_cast<size_t>(&s - sockets_.data())];
    });
    if (it != sockets_.end()) {
      it->listener = wanted.listener;
      keep[static_cast<size_t>(it - sockets_.begin())] = true;
      continue;
    }
    if (!wanted.fd) continue;  // the control thread only omits fds for sockets we have
    size_t i = 0;
    while (i < sockets_.size() && (sockets_[i].fd || accept_armed_[i])) ++i;
    if (i == sockets_.size()) {
      if (i >= kMaxSockets) {
        core::log().error("worker {}: more than {} listening sockets; not listening on {}", id_, kMaxSockets,
                          wanted.key);
        continue;
      }
      sockets_.emplace_back();
      accept_armed_.push_back(false);
      closing_.push_back(false);
      keep.push_back(false);
    }
    sockets_[i] = std::move(wanted);
    closing_[i] = false;
    keep[i] = true;
    armAccept(i);
  }
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (!keep[i] && sockets_[i].fd && !closing_[i]) closeSocket(i);
  }
}

void Worker::closeSocket(size_t i) {
  closing_[i] = true;
  if (accept_armed_[i]) {
    loop_.cancelOp(slot_, kCancelAccept, static_cast<uint8_t>(kAcceptBase + i));
  } else {
    sockets_[i].fd.reset();
    closing_[i] = false;
  }
}

// Each backend with active checks is checked by one worker: backend number k (counting over
// the pools in order) by worker k % worker_count. A reload restarts the checkers on the new
// generation; the state they feed (health::ServerState) is the backend's shared one, so an
// unchanged backend keeps its up/down state and counters.
void Worker::startCheckers(Generation& generation) {
  const Runtime& rt = generation.runtime();
  uint32_t ordinal = 0;
  for (const Pool& pool : rt.pools) {
    const health::CheckConfig& check = pool.config->health;
    for (const auto& backend : pool.backends) {
      uint32_t owner = ordinal++ % worker_count_;
      if (check.type == health::CheckType::None || owner != id_) continue;
      health::CheckTarget target;
      target.pool = pool.name;
      target.backend = backend->name;
      target.address = check.port ? backend->address.withPort(check.port) : backend->address;
      target.host = backend->address.isUnix() ? "localhost" : backend->address_text;
      if (check.speaksTls()) {
        // forward_sni has no client to forward from: such a check sends no SNI.
        target.sni = check.tls.forward_sni ? "" : check.tls.sni;
        const std::string& tls_name = pool.config->backends[backend->index].tls_name;
        std::string ip = backend->address.hostString();
        target.verify_name = !tls_name.empty() ? tls_name
                                               : std::string(tls::ClientContext::verifyNameFor(check.tls, target.sni, ip));
      }
      auto checker = std::make_unique<health::Checker>(loop_, check, std::move(target), backend->health(),
                                                       generation.checkTls(pool.index));
      // The first check soon (a new generation should not wait a full interval to learn a
      // new backend's state), spread over up to one fast interval.
      auto spread = std::chrono::duration_cast<health::Millis>(check.fast_interval * (ordinal % 16) / 16);
      checker->start(health::Millis{10} + spread);
      generation.checkers.push_back(std::move(checker));
    }
  }
}

void Worker::stopCheckers(Generation& generation) {
  // Once per generation: a generation retired by a reload is stopped again by beginDrain()
  // (and a drained one again by a late update); stopping a checker that is already stopping
  // would count it twice in checkers_stopping, which then never returns to 0 (the
  // generation is never freed and the worker never exits).
  if (generation.checkers_stopped) return;
  generation.checkers_stopped = true;
  for (auto& checker : generation.checkers) {
    if (!checker) continue;
    health::Checker* raw = checker.get();
    bool idle = raw->stop([this, &generation](health::Checker* stopped) {
      for (auto& c : generation.checkers) {
        if (c.get() == stopped) c.reset();
      }
      --generation.checkers_stopping;
      maybeFreeGenerations();
      maybeExit();
    });
    if (idle) {
      checker.reset();
    } else {
      ++generation.checkers_stopping;
    }
  }
}

// Frees retired generations that no connection uses and whose checkers have stopped.
void Worker::maybeFreeGenerations() {
  for (size_t i = 0; i + 1 < generations_.size();) {
    Generation& g = *generations_[i];
    if (g.retired && g.connections == 0 && g.checkers_stopping == 0) {
      generations_.erase(generations_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void Worker::armAccept(size_t i) {
  if (accept_armed_[i] || !sockets_[i].fd) return;
  accept_armed_[i] = true;
  loop_.acceptMultishot(slot_, static_cast<uint8_t>(kAcceptBase + i), sockets_[i].fd.get());
}

void Worker::onCompletion(uint8_t op, const core::Completion& completion) {
  if (op == kStopRead) {
    beginDrain();
  } else if (op == kUpdateRead) {
    applyUpdates();
    if (completion.res >= 0 && !stopping_) loop_.readEventFd(slot_, kUpdateRead, update_fd_.get(), &update_value_);
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
  Runtime& rt = current().runtime();
  if (!takeSlot(rt.active, rt.config.global.max_connections, rt.rejected_global_limit, "global")) return false;
  if (!takeSlot(listener.stats.active, listener.config->max_connections, listener.stats.rejected_limit,
                "listener " + listener.config->name)) {
    rt.active.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Worker::onAccept(size_t i, const core::Completion& completion) {
  // sockets_[i].listener indexes the current generation's listeners only while the socket is
  // kept: a socket closed by a reload (or left alone while stopping) still holds its index
  // in an older generation, which may be past the end of the current one's listeners.
  const bool in_use = !stopping_ && !closing_[i];
  if (completion.res >= 0) {
    int fd = completion.res;
    if (!in_use || !admit(*current().runtime().listeners[sockets_[i].listener])) {
      ::close(fd);
    } else {
      ListenerRuntime& listener = *current().runtime().listeners[sockets_[i].listener];
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
      ++current().connections;
      conn->start(fd, listener, current());
    }
  }
  if (completion.more()) return;
  accept_armed_[i] = false;
  if (stopping_ || closing_[i]) {
    sockets_[i].fd.reset();  // the multishot accept is gone: stop listening
    closing_[i] = false;
    return;
  }
  if (completion.res < 0 && completion.res != -ECANCELED) {
    // EMFILE/ENFILE/ENOMEM: back off instead of spinning; connections wait in the backlog.
    const ListenerRuntime& listener = *current().runtime().listeners[sockets_[i].listener];
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
  loop_.cancelOp(slot_, kCancelAccept, kUpdateRead);
  for (auto& generation : generations_) stopCheckers(*generation);
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (accept_armed_[i]) {
      loop_.cancelOp(slot_, kCancelAccept, static_cast<uint8_t>(kAcceptBase + i));
    } else {
      sockets_[i].fd.reset();
    }
  }
  const GlobalConfig& global = current().runtime().config.global;
  loop_.timers().schedule(drain_timer_, loop_.now() + global.drain_timeout);
  core::log().info("worker {}: stopped accepting; draining {} connections (up to {} ms)", id_, live_count_,
                   global.drain_timeout.count());
}

void Worker::maybeExit() {
  if (!stopping_ || live_count_ > 0) return;
  for (const auto& generation : generations_) {
    if (generation->checkers_stopping > 0) return;
  }
  if (std::any_of(accept_armed_.begin(), accept_armed_.end(), [](bool b) { return b; })) return;
  if (loop_.inflight(slot_) > 0) return;
  loop_.timers().cancel(drain_timer_);
  loop_.stop();
}

void Worker::connectionClosed(ProxyConnection* conn, Generation* generation) {
  --generation->connections;
  if (generation->retired && generation->connections == 0) maybeFreeGenerations();
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
  const uint32_t max_hello = hello_max_;
  while (!spare_hello_.empty()) {
    std::unique_ptr<HelloBuffer> b = std::move(spare_hello_.back());
    spare_hello_.pop_back();
    // A buffer sized before a reload raised client_hello_max would refuse hellos the
    // listener now accepts: drop it.
    if (b->scratch_capacity >= max_hello) return b.release();
  }
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
