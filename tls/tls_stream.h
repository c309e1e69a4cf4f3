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
//
// Async crypto (SSL_MODE_ASYNC, [crypto] async): handshake(), read() and write() run inside
// an OpenSSL async job (ASYNC_start_job(3)). When an engine or provider pauses the job (an
// accelerator is working), the call returns WantAsync: the caller waits until one of
// asyncWaitFds() is readable, then repeats the same call (same arguments: the paused job
// still refers to the buffers of the first call, so they must stay valid). SSL_free(3) does
// not free a paused job, so a stream must not be reset() while asyncPaused(): finish the job
// first with resumeDiscarding().
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
  WantAsync,  // an async job is paused: repeat the same call once an asyncWaitFds() fd is readable
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
  // Queues close_notify (RFC 8446 s6.1) to the sink; true when it was written. False (and
  // nothing sent) while a job is paused: SSL_shutdown would resume that job.
  bool close();

  // An async job of this stream is paused (SSL_waiting_for_async(3)).
  bool asyncPaused() const { return ssl_ && SSL_waiting_for_async(ssl_.get()) == 1; }
  // The fds the paused job waits on (SSL_get_all_async_fds(3)): up to `cap` of them into
  // `fds`; returns how many there are (may exceed `cap`).
  size_t asyncWaitFds(int* fds, size_t cap) const;
  // Fds added to / removed from the wait set since the last call (SSL_get_changed_async_fds),
  // for callers that keep a poll armed across pauses. Counts may exceed the caps.
  void asyncChangedFds(int* added, size_t& num_added, int* removed, size_t& num_removed) const;
  // Teardown of a stream whose job is paused: resumes the job once with every record
  // discarded and no more input, so it can run to its end. Returns WantAsync if the job paused
  // again (wait on asyncWaitFds() again), anything else once no job is left; then reset().
  TlsStatus resumeDiscarding();

  // Why the last call failed: OpenSSL's reason, plus the certificate verification result
  // when that is what failed. Empty if nothing failed.
  const std::string& error() const { return error_; }

 private:
  static int bioWrite(BIO* bio, const char* data, size_t len, size_t* written);
  static int bioRead(BIO* bio, char* data, size_t len, size_t* read);
  static long bioCtrl(BIO* bio, int cmd, long num, void* ptr);
  static const BIO_METHOD* bioMethod();
  TlsStatus status(int ret, const char* what);

  // Which call a paused job belongs to (resumeDiscarding repeats it).
  enum class AsyncOp : uint8_t { None, Handshake, Read, Write };
  TlsStatus noteAsync(TlsStatus result, AsyncOp op);

  SslPtr ssl_;
  CiphertextSink* sink_ = nullptr;
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  bool in_eof_ = false;
  bool handshake_done_ = false;
  bool failed_ = false;
  AsyncOp async_op_ = AsyncOp::None;
  std::string error_;
  KtlsTrack ktls_;
};

}  // namespace ringlb::tls
