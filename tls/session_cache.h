// A server-side TLS session cache shared by every worker of a listener. OpenSSL's internal
// cache lives in an SSL_CTX, and each worker has its own SSL_CTX set, so without this a
// client resuming by session ID (TLS 1.2 without tickets: curl, for one; TLS 1.3 stateful
// tickets with session_tickets = false) resumed only when SO_REUSEPORT happened to pick the
// worker that made the session. HAProxy shares its cache between threads the same way.
//
// Installed as OpenSSL's external cache (SSL_CTX_sess_set_new_cb/get_cb/remove_cb, with
// SSL_SESS_CACHE_NO_INTERNAL): sessions are stored serialized (i2d_SSL_SESSION) in 16
// mutex-protected shards, bounded by `capacity` (oldest out first). OpenSSL still checks a
// looked-up session's lifetime and session ID context. Must outlive the SSL_CTXs using it.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ringlb::tls {

class SharedSessionCache {
 public:
  explicit SharedSessionCache(size_t capacity);
  SharedSessionCache(const SharedSessionCache&) = delete;
  SharedSessionCache& operator=(const SharedSessionCache&) = delete;

  // Makes `ctx` (a server context) use this cache instead of its own.
  void install(SSL_CTX* ctx);
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::string> sessions;  // session ID -> DER
    std::deque<std::string> order;                           // insertion order, may hold removed IDs
  };
  Shard& shardFor(const std::string& id);
  void store(const std::string& id, std::string der);
  SSL_SESSION* lookup(const std::string& id);
  void remove(const std::string& id);

  static int onNew(SSL* ssl, SSL_SESSION* session);
  static SSL_SESSION* onGet(SSL* ssl, const unsigned char* id, int id_len, int* copy);
  static void onRemove(SSL_CTX* ctx, SSL_SESSION* session);

  std::array<Shard, 16> shards_;
  size_t per_shard_;
};

}  // namespace ringlb::tls
