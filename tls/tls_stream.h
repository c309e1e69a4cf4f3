// One TLS connection driven through caller-owned memory: OpenSSL never touches a socket.
//
// Ciphertext in: the caller points the stream at bytes it received (setInput); OpenSSL
// reads them through a custom BIO, without copying them anywhere but its own record buffer,
// and the caller releases its buffer once inputLeft() is 0.
// Ciphertext out: every record OpenSSL writes goes straight to the caller's CiphertextSink
// (which packs it into buffers it then sends). A sink may refuse (no buffer free); OpenSSL
// then reports WantWrite and the same write/handshake call must be repeated later.
//
// The SSL object is created by the caller (tls/server_context.h, tls/client_context.h) with
// SSL_MODE_RELEASE_BUFFERS, so an idle stream holds no record buffers.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tls/ktls_keys.h"
#include "tls/ssl_ptr.h"

namespace ringlb::tls {

class CiphertextSink {
 public:
  // Takes all `len` bytes and returns true, or takes nothing and returns false.
  virtual bool writeCiphertext(const uint8_t* data, size_t len) = 0;

 protected:
  ~CiphertextSink() = default;
};

enum class TlsStatus : uint8_t {
  Ok,         // progress: the handshake finished / bytes were read or written
  WantRead,   // needs more ciphertext (all input consumed)
  WantWrite,  // the sink refused: repeat the same call once it can take bytes
  Closed,     // the peer sent close_notify (reads), or the peer closed without one
  Error,      // fatal: the reason is in error()
};

class TlsStream {
 public:
  TlsStream() = default;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Takes `ssl` (server or client mode already set) and attaches the BIO.
  bool attach(SslPtr ssl, CiphertextSink* sink);
  // Watch the handshake for kTLS (tls/ktls_keys.h): record counts and, if the context
  // captures them, the TLS 1.3 traffic secrets. After attach(), before the handshake.
  bool trackKtls() { return tls::trackKtls(ssl_.get(), &ktls_); }
  const KtlsTrack& ktlsTrack() const { return ktls_; }
  // Frees the SSL object (and any buffers it holds).
  void reset();
  bool active() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_.get(); }

  void setInput(const uint8_t* data, size_t len) {
    in_ = data;
    in_len_ = len;
  }
  size_t inputLeft() const { return in_len_; }
  // The transport reached EOF: reads past the input then fail instead of waiting.
  void setInputEof() { in_eof_ = true; }

  bool handshakeDone() const { return handshake_done_; }
  TlsStatus handshake();
  // Decrypts up to `cap` bytes into `out`.
  TlsStatus read(uint8_t* out, size_t cap, size_t& n);
  // Encrypts up to `len` bytes; `written` says how many are now records in the sink (all of
  // them unless the sink refused part way, which also returns Ok if anything was written).
  // After WantWrite, call again with the same bytes (SSL_write(3): the retry must repeat
  // the arguments).
  TlsStatus write(const uint8_t* data, size_t len, size_t& written);
  // Queues close_notify (RFC 8446 s6.1) to the sink; true when it was written.
  bool close();

  // Why the last call failed: OpenSSL's reason, plus the certificate verification result
  // when that is what failed. Empty if nothing failed.
  const std::string& error() const { return error_; }

 private:
  static int bioWrite(BIO* bio, const char* data, size_t len, size_t* written);
  static int bioRead(BIO* bio, char* data, size_t len, size_t* read);
  static long bioCtrl(BIO* bio, int cmd, long num, void* ptr);
  static const BIO_METHOD* bioMethod();
  TlsStatus status(int ret, const char* what);

  SslPtr ssl_;
  CiphertextSink* sink_ = nullptr;
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  bool in_eof_ = false;
  bool handshake_done_ = false;
  bool failed_ = false;
  std::string error_;
  KtlsTrack ktls_;
};

}  // namespace ringlb::tls
