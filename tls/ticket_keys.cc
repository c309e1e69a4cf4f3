#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tls/ssl_ptr.h"

namespace ringlb::tls {
namespace {

constexpr size_t kKey256Bytes = 80;  // HAProxy struct tls_sess_key_256
constexpr size_t kKey128Bytes = 48;  // HAProxy struct tls_sess_key_128

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Strict base64 (RFC 4648 s4, with padding). EVP_DecodeBlock(3) accepts some garbage (it
// skips leading/trailing whitespace and does not report padding), so validate first and use
// it only for the conversion.
bool decodeBase64(std::string_view text, std::vector<uint8_t>* out) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4 * 64) return false;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '=') {
      if (i < text.size() - 2) return false;
      ++padding;
    } else if (!(alnum || c == '+' || c == '/') || padding > 0) {
      return false;
    }
  }
  out->assign(text.size() / 4 * 3, 0);
  const int n = EVP_DecodeBlock(out->data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return false;
  out->resize(static_cast<size_t>(n) - padding);
  return true;
}

void setError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

// ex_data slot of an SSL_CTX holding a heap std::shared_ptr<const TicketKeys>; the free
// callback drops that reference when the SSL_CTX is freed. The index itself is process-wide
// and immutable once allocated (CRYPTO_get_ex_new_index(3)).
void freeKeysRef(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<const TicketKeys>*>(ptr);
}

int keysIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freeKeysRef);
  return index;
}

// SSL_CTX_set_tlsext_ticket_key_evp_cb(3). enc=1: choose the key for a new ticket and init
// the cipher (with a fresh random IV) and the HMAC; enc=0: find the key named in the ticket.
// Returns 1 = ok; 2 = ok, and issue a new ticket; 0 = no ticket / unknown key (full
// handshake); -1 = error.
//  - TLS 1.3: every resumption gets a fresh ticket (with 1, OpenSSL would send none): clients
//    use each ticket once (RFC 8446 appendix C.4 recommends it against linkability), so
//    without a new one a returning client pays a full handshake next time. One ticket
//    encryption is a few microseconds against a full handshake's hundreds.
//  - TLS 1.2: renewed only when it was issued under an older key (it then moves to the
//    newest), as HAProxy does. Renewing every time cost clients with their own session cache
//    (curl, anything with SSL_SESS_CACHE_CLIENT) every other resumption: OpenSSL replaces the
//    session it resumed with and marks the one in the cache not resumable, so the next
//    connection offered nothing (59% resumed in bench/crypto).
int ticketKeyCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                      EVP_CIPHER_CTX* cipher_ctx, EVP_MAC_CTX* mac_ctx, int enc) {
  const auto* ref = static_cast<const std::shared_ptr<const TicketKeys>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keysIndex()));
  if (ref == nullptr || *ref == nullptr) return 0;  // no keys here: no ticket, full handshake
  const TicketKeys& keys = **ref;
  const TicketKeys::Key* key = nullptr;
  if (enc) {
    key = &keys.encryptionKey();
    std::memcpy(key_name, key->name.data(), TicketKeys::kNameBytes);
  }
  bool renew = true;
  if (!enc) {
    bool newest = true;
    key = keys.findKey(key_name, &newest);
    if (key == nullptr) return 0;
    renew = SSL_version(ssl) >= TLS1_3_VERSION || !newest;
  }
  const EVP_CIPHER* cipher = keys.cipherFor(*key);
  const int iv_len = EVP_CIPHER_get_iv_length(cipher);
  if (enc && RAND_bytes(iv, iv_len) != 1) return -1;

  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                const_cast<uint8_t*>(key->hmac.data()),
                                                key->aes_bytes);
  params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                               const_cast<char*>("SHA256"), 0);
  params[2] = OSSL_PARAM_construct_end();
  if (EVP_MAC_CTX_set_params(mac_ctx, params) != 1) return -1;
  const int ok = enc ? EVP_EncryptInit_ex2(cipher_ctx, cipher, key->aes.data(), iv, nullptr)
                     : EVP_DecryptInit_ex2(cipher_ctx, cipher, key->aes.data(), iv, nullptr);
  if (ok != 1) return -1;
  return enc || !renew ? 1 : 2;
}

}  // namespace

TicketKeys::~TicketKeys() {
  EVP_CIPHER_free(aes128_);
  EVP_CIPHER_free(aes256_);
  OPENSSL_cleanse(keys_.data(), keys_.size() * sizeof(Key));
}

const TicketKeys::Key* TicketKeys::findKey(const unsigned char* name, bool* newest) const {
  // Newest first: nearly every ticket presented was issued under the current key.
  for (size_t i = keys_.size(); i-- > 0;) {
    if (std::memcmp(keys_[i].name.data(), name, kNameBytes) == 0) {
      *newest = i + 1 == keys_.size();
      return &keys_[i];
    }
  }
  return nullptr;
}

const EVP_CIPHER* TicketKeys::cipherFor(const Key& key) const {
  return key.aes_bytes == 16 ? aes128_ : aes256_;
}

std::shared_ptr<const TicketKeys> TicketKeys::build(std::vector<Key> keys, std::string* error) {
  std::shared_ptr<TicketKeys> out(new TicketKeys());
  out->keys_ = std::move(keys);
  // EVP_CIPHER_fetch(3): explicit fetch once; the per-ticket init then skips the lookup.
  out->aes128_ = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  out->aes256_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (out->aes128_ == nullptr || out->aes256_ == nullptr) {
    setError(error, withOpensslErrors("cannot fetch AES-CBC from the OpenSSL providers"));
    return nullptr;
  }
  return out;
}

std::shared_ptr<const TicketKeys> TicketKeys::parse(std::string_view text,
                                                    const std::string& source,
                                                    std::string* error) {
  std::vector<Key> keys;
  std::vector<uint8_t> raw;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    std::string_view line = trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = source + ":" + std::to_string(line_no) + ": ";
    if (!decodeBase64(line, &raw)) {
      setError(error, where + "not valid base64");
      return nullptr;
    }
    if (raw.size() != kKey256Bytes && raw.size() != kKey128Bytes) {
      setError(error, where + "key is " + std::to_string(raw.size()) +
                          " bytes, expected 80 (or 48)");
      OPENSSL_cleanse(raw.data(), raw.size());
      return nullptr;
    }
    if (keys.size() == kMaxKeys) {
      setError(error, where + "more than " + std::to_string(kMaxKeys) + " keys");
      return nullptr;
    }
    Key key;
    key.aes_bytes = static_cast<uint8_t>((raw.size() - kNameBytes) / 2);
    std::memcpy(key.name.data(), raw.data(), kNameBytes);
    std::memcpy(key.aes.data(), raw.data() + kNameBytes, key.aes_bytes);
    std::memcpy(key.hmac.data(), raw.data() + kNameBytes + key.aes_bytes, key.aes_bytes);
    OPENSSL_cleanse(raw.data(), raw.size());
    keys.push_back(key);
  }
  if (keys.empty()) {
    setError(error, source + ": no keys");
    return nullptr;
  }
  return build(std::move(keys), error);
}

std::shared_ptr<const TicketKeys> TicketKeys::load(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    setError(error, path + ": cannot read: " + std::strerror(errno));
    return nullptr;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    setError(error, path + ": cannot read: " + std::strerror(errno));
    return nullptr;
  }
  std::string contents = text.str();
  auto keys = parse(contents, path, error);
  OPENSSL_cleanse(contents.data(), contents.size());
  return keys;
}

std::shared_ptr<const TicketKeys> TicketKeys::random() {
  Key key;
  if (RAND_bytes(key.name.data(), kNameBytes) != 1 || RAND_bytes(key.aes.data(), 32) != 1 ||
      RAND_bytes(key.hmac.data(), 32) != 1) {
    return nullptr;
  }
  return build({key}, nullptr);
}

bool installTicketKeys(SSL_CTX* ctx, std::shared_ptr<const TicketKeys> keys, std::string* error) {
  if (keys == nullptr) {
    setError(error, "no ticket keys");
    return false;
  }
  const int index = keysIndex();
  if (index < 0) {
    setError(error, withOpensslErrors("cannot allocate SSL_CTX ex_data index"));
    return false;
  }
  auto* ref = new std::shared_ptr<const TicketKeys>(std::move(keys));
  auto* old = static_cast<std::shared_ptr<const TicketKeys>*>(SSL_CTX_get_ex_data(ctx, index));
  if (SSL_CTX_set_ex_data(ctx, index, ref) != 1) {
    delete ref;
    setError(error, withOpensslErrors("cannot store ticket keys in SSL_CTX"));
    return false;
  }
  delete old;
  if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback) != 1) {
    setError(error, withOpensslErrors("SSL_CTX_set_tlsext_ticket_key_evp_cb failed"));
    return false;
  }
  return true;
}

}  // namespace ringlb::tls
