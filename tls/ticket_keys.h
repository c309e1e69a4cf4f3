// Session-ticket keys (RFC 5077 s4 key_name + encryption + MAC keys) shared by every worker
// and by several ringlb instances, so a ticket issued by one resumes on any other.
//
// File format: compatible with HAProxy's `tls-ticket-keys` files, so operators can reuse
// theirs. One base64 key per line; blank lines and lines starting with '#' are ignored;
// surrounding whitespace is trimmed. A decoded key is laid out as HAProxy's
// `struct tls_sess_key_256` / `tls_sess_key_128` (include/haproxy/ssl_sock-t.h):
//   80 bytes = 16-byte key name | 32-byte AES-256-CBC key | 32-byte HMAC-SHA256 key
//   48 bytes = 16-byte key name | 16-byte AES-128-CBC key | 16-byte HMAC-SHA256 key
// Generate one with `openssl rand 80 | openssl base64 -A`.
//
// Semantics (these differ from HAProxy on one point, see below):
//  - The LAST key in the file is the newest and encrypts every new ticket.
//  - Every key in the file decrypts. A ticket decrypted with any key but the newest is
//    accepted and renewed (a fresh ticket under the newest key is issued).
//  - Rotating = append a new key, drop the oldest, reload every instance.
//  - Difference from HAProxy: HAProxy encrypts with the second-to-last key, so that a key can
//    be distributed to all instances one rotation before anyone encrypts with it. With
//    ringlb's rule, an instance reloaded early issues tickets the others cannot read until
//    they reload too (those clients just do a full handshake). To get HAProxy's staging with
//    ringlb, append the next key only at the rotation where it should start encrypting.
//  - HAProxy needs at least 3 keys and uses only the last 3; ringlb accepts 1..kMaxKeys.
//
// Thread safety: a TicketKeys is immutable after load() and shared read-only (shared_ptr to
// const) between workers. The AES-CBC EVP_CIPHERs are fetched once here, not per ticket. The
// HMAC side needs no fetch of ours: OpenSSL hands the callback a ready EVP_MAC_CTX for HMAC
// and we only set its key and digest (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringlb::tls {

class TicketKeys {
 public:
  static constexpr size_t kNameBytes = 16;
  static constexpr size_t kMaxKeys = 64;

  struct Key {
    std::array<uint8_t, kNameBytes> name{};
    std::array<uint8_t, 32> aes{};   // first aes_bytes used
    std::array<uint8_t, 32> hmac{};  // first aes_bytes used (HAProxy: same length as AES key)
    uint8_t aes_bytes = 32;          // 16 (48-byte key) or 32 (80-byte key)
  };

  // Reads `path`. On failure returns nullptr and sets *error to one of:
  //   "<path>: cannot read: <strerror>"
  //   "<path>:<line>: not valid base64"
  //   "<path>:<line>: key is <n> bytes, expected 80 (or 48)"
  //   "<path>:<line>: more than 64 keys"
  //   "<path>: no keys"
  static std::shared_ptr<const TicketKeys> load(const std::string& path, std::string* error);

  // Same, from the file's text; `source` names it in errors.
  static std::shared_ptr<const TicketKeys> parse(std::string_view text, const std::string& source,
                                                 std::string* error);

  // One fresh 80-byte key from the CSPRNG (RAND_bytes): for listeners without a key file.
  // Tickets then resume only on this process. Returns nullptr if the RNG or a fetch fails.
  static std::shared_ptr<const TicketKeys> random();

  const std::vector<Key>& keys() const { return keys_; }  // never empty
  const Key& encryptionKey() const { return keys_.back(); }

  // The key named `name` (kNameBytes bytes), or nullptr; *newest = it is encryptionKey().
  const Key* findKey(const unsigned char* name, bool* newest) const;
  // AES-128-CBC or AES-256-CBC, matching key.aes_bytes.
  const EVP_CIPHER* cipherFor(const Key& key) const;

  ~TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

 private:
  TicketKeys() = default;
  static std::shared_ptr<const TicketKeys> build(std::vector<Key> keys, std::string* error);

  std::vector<Key> keys_;
  EVP_CIPHER* aes128_ = nullptr;
  EVP_CIPHER* aes256_ = nullptr;
};

// Makes `ctx` encrypt and decrypt tickets with `keys` (SSL_CTX_set_tlsext_ticket_key_evp_cb).
// The context keeps a reference to `keys` (in its ex_data) until it is freed or until the
// next installTicketKeys() on it. Returns false (and sets *error) if OpenSSL refuses.
// Install the same keys on every SSL_CTX an SSL can be switched to with SSL_set_SSL_CTX.
bool installTicketKeys(SSL_CTX* ctx, std::shared_ptr<const TicketKeys> keys, std::string* error);

}  // namespace ringlb::tls
