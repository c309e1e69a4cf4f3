#include "tls/session_cache.h"

#include <functional>

namespace ringlb::tls {
namespace {

// ex_data slot of an SSL_CTX holding the SharedSessionCache* (not owned: the ServerContext
// that owns the SSL_CTX also holds the cache).
int cacheIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

SharedSessionCache* cacheOf(SSL_CTX* ctx) {
  return static_cast<SharedSessionCache*>(SSL_CTX_get_ex_data(ctx, cacheIndex()));
}

std::string sessionId(const SSL_SESSION* session) {
  unsigned int len = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &len);
  return std::string(reinterpret_cast<const char*>(id), len);
}

}  // namespace

SharedSessionCache::SharedSessionCache(size_t capacity)
    : per_shard_(std::max<size_t>(1, (capacity + shards_.size() - 1) / shards_.size())) {}

void SharedSessionCache::install(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, cacheIndex(), this);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx, onNew);
  SSL_CTX_sess_set_get_cb(ctx, onGet);
  SSL_CTX_sess_set_remove_cb(ctx, onRemove);
}

size_t SharedSessionCache::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.sessions.size();
  }
  return n;
}

SharedSessionCache::Shard& SharedSessionCache::shardFor(const std::string& id) {
  return shards_[std::hash<std::string>{}(id) % shards_.size()];
}

void SharedSessionCache::store(const std::string& id, std::string der) {
  Shard& shard = shardFor(id);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.sessions.insert_or_assign(id, std::move(der));
  if (inserted) shard.order.push_back(id);
  // Oldest out first; IDs removed meanwhile are skipped (and keep `order` bounded).
  while ((shard.sessions.size() > per_shard_ || shard.order.size() > 2 * per_shard_) && !shard.order.empty()) {
    shard.sessions.erase(shard.order.front());
    shard.order.pop_front();
  }
}

SSL_SESSION* SharedSessionCache::lookup(const std::string& id) {
  std::string der;
  {
    Shard& shard = shardFor(id);
    std::lock_guard lock(shard.mu);
    auto it = shard.sessions.find(id);
    if (it == shard.sessions.end()) return nullptr;
    der = it->second;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.size()));
}

void SharedSessionCache::remove(const std::string& id) {
  Shard& shard = shardFor(id);
  std::lock_guard lock(shard.mu);
  shard.sessions.erase(id);
}

// SSL_CTX_sess_set_new_cb(3): returning 0 leaves the session's reference with OpenSSL.
int SharedSessionCache::onNew(SSL* ssl, SSL_SESSION* session) {
  SharedSessionCache* cache = cacheOf(SSL_get_SSL_CTX(ssl));
  if (cache == nullptr) return 0;
  int len = i2d_SSL_SESSION(session, nullptr);
  if (len <= 0) return 0;
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_SSL_SESSION(session, &p) != len) return 0;
  cache->store(sessionId(session), std::move(der));
  return 0;
}

// *copy = 0: the returned session is a fresh object whose reference OpenSSL takes.
SSL_SESSION* SharedSessionCache::onGet(SSL* ssl, const unsigned char* id, int id_len, int* copy) {
  *copy = 0;
  SharedSessionCache* cache = cacheOf(SSL_get_SSL_CTX(ssl));
  if (cache == nullptr || id_len <= 0) return nullptr;
  return cache->lookup(std::string(reinterpret_cast<const char*>(id), static_cast<size_t>(id_len)));
}

void SharedSessionCache::onRemove(SSL_CTX* ctx, SSL_SESSION* session) {
  if (SharedSessionCache* cache = cacheOf(ctx)) cache->remove(sessionId(session));
}

}  // namespace ringlb::tls
