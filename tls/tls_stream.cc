#include "tls/tls_stream.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <cstring>
#include <mutex>

namespace ringlb::tls {
namespace {

// SSL_get_error(3) needs an empty error queue before each call; it normally is (failures
// drain it into error()), and ERR_clear_error() walks every slot, so only clear when needed.
inline void clearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

// A source/sink BIO over the stream's input pointer and its sink (BIO_meth_new(3)). Reads
// that find no input return "retry", which OpenSSL turns into SSL_ERROR_WANT_READ; the
// same for writes the sink refuses.
const BIO_METHOD* TlsStream::bioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringlb stream");
    BIO_meth_set_write_ex(m, &TlsStream::bioWrite);
    BIO_meth_set_read_ex(m, &TlsStream::bioRead);
    BIO_meth_set_ctrl(m, &TlsStream::bioCtrl);
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

int TlsStream::bioWrite(BIO* bio, const char* data, size_t len, size_t* written) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (!self->sink_->writeCiphertext(reinterpret_cast<const uint8_t*>(data), len)) {
    BIO_set_retry_write(bio);
    *written = 0;
    return 0;
  }
  *written = len;
  return 1;
}

int TlsStream::bioRead(BIO* bio, char* data, size_t len, size_t* read) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self->in_len_ == 0) {
    *read = 0;
    if (!self->in_eof_) BIO_set_retry_read(bio);
    return 0;
  }
  size_t n = len < self->in_len_ ? len : self->in_len_;
  std::memcpy(data, self->in_, n);
  self->in_ += n;
  self->in_len_ -= n;
  *read = n;
  return 1;
}

long TlsStream::bioCtrl(BIO* bio, int cmd, long, void*) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // the sink owns delivery
    case BIO_CTRL_PENDING: return static_cast<long>(self->in_len_);
    case BIO_CTRL_WPENDING: return 0;
    case BIO_CTRL_EOF: return self->in_len_ == 0 && self->in_eof_;
    default: return 0;
  }
}

bool TlsStream::attach(SslPtr ssl, CiphertextSink* sink) {
  BIO* bio = BIO_new(bioMethod());
  if (bio == nullptr) return false;
  BIO_set_data(bio, this);
  ssl_ = std::move(ssl);
  SSL_set_bio(ssl_.get(), bio, bio);  // one BIO both ways; SSL owns it (one reference)
  sink_ = sink;
  ktls_ = {};
  in_ = nullptr;
  in_len_ = 0;
  in_eof_ = false;
  handshake_done_ = false;
  failed_ = false;
  error_.clear();
  return true;
}

void TlsStream::reset() {
  // SSL_free(3) drops the session from the cache (and makes it non-resumable) unless the
  // connection was shut down; a connection that completed its handshake and never failed
  // ended normally even if the peer closed without close_notify, so keep its session.
  if (ssl_ && handshake_done_ && !failed_) SSL_set_shutdown(ssl_.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  ssl_.reset();
  OPENSSL_cleanse(&ktls_, sizeof(ktls_));  // traffic secrets, when kTLS tracking captured them
  failed_ = false;
  async_op_ = AsyncOp::None;
  in_ = nullptr;
  in_len_ = 0;
  handshake_done_ = false;
}

TlsStatus TlsStream::status(int ret, const char* what) {
  int err = SSL_get_error(ssl_.get(), ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      if (in_len_ == 0 && in_eof_) break;  // nothing more will come
      return TlsStatus::WantRead;
    case SSL_ERROR_WANT_WRITE: return TlsStatus::WantWrite;
    case SSL_ERROR_ZERO_RETURN: return TlsStatus::Closed;
    case SSL_ERROR_WANT_ASYNC: return TlsStatus::WantAsync;
    default: break;
  }
  unsigned long code = ERR_peek_error();
  // The peer closed the transport without close_notify (RFC 8446 s6.1 calls this a
  // truncation; reported by OpenSSL 3 as SSL_R_UNEXPECTED_EOF_WHILE_READING).
  if (in_eof_ && in_len_ == 0 &&
      (code == 0 || ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    ERR_clear_error();
    error_ = "peer closed the connection without close_notify";
    return TlsStatus::Closed;
  }
  if (failed_) return TlsStatus::Error;  // keep the first reason: later calls see an empty queue
  failed_ = true;
  error_ = what;
  error_ += ": ";
  long verify = SSL_get_verify_result(ssl_.get());
  std::string queue = opensslErrors();
  error_ += queue.empty() ? "SSL error " + std::to_string(err) : queue;
  if (verify != X509_V_OK) {
    error_ += " (";
    error_ += X509_verify_cert_error_string(verify);
    error_ += ")";
  }
  return TlsStatus::Error;
}

TlsStatus TlsStream::handshake() {
  clearStaleErrors();
  int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    handshake_done_ = true;
    async_op_ = AsyncOp::None;
    return TlsStatus::Ok;
  }
  return noteAsync(status(ret, "handshake failed"), AsyncOp::Handshake);
}

TlsStatus TlsStream::read(uint8_t* out, size_t cap, size_t& n) {
  clearStaleErrors();
  n = 0;
  if (SSL_read_ex(ssl_.get(), out, cap, &n) == 1) {
    async_op_ = AsyncOp::None;
    return TlsStatus::Ok;
  }
  return noteAsync(status(0, "read failed"), AsyncOp::Read);
}

TlsStatus TlsStream::write(const uint8_t* data, size_t len, size_t& written) {
  clearStaleErrors();
  written = 0;
  // With SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write_ex reports success once at least one
  // record is in the sink; without it, only when all `len` bytes are.
  if (SSL_write_ex(ssl_.get(), data, len, &written) == 1) {
    async_op_ = AsyncOp::None;
    return TlsStatus::Ok;
  }
  return noteAsync(status(0, "write failed"), AsyncOp::Write);
}

TlsStatus TlsStream::noteAsync(TlsStatus result, AsyncOp op) {
  async_op_ = result == TlsStatus::WantAsync ? op : AsyncOp::None;
  return result;
}

size_t TlsStream::asyncWaitFds(int* fds, size_t cap) const {
  size_t count = 0;
  if (!ssl_ || SSL_get_all_async_fds(ssl_.get(), nullptr, &count) != 1) return 0;
  if (count == 0 || count > cap) return count;
  SSL_get_all_async_fds(ssl_.get(), fds, &count);
  return count;
}

void TlsStream::asyncChangedFds(int* added, size_t& num_added, int* removed, size_t& num_removed) const {
  size_t cap_added = num_added;
  size_t cap_removed = num_removed;
  num_added = num_removed = 0;
  if (!ssl_ || SSL_get_changed_async_fds(ssl_.get(), nullptr, &num_added, nullptr, &num_removed) != 1) return;
  if (num_added > cap_added || num_removed > cap_removed) return;
  SSL_get_changed_async_fds(ssl_.get(), added, &num_added, removed, &num_removed);
}

// ASYNC_start_job(3) resumes a paused job whatever the arguments of the call that resumes it
// (the job kept its own copy of the first call's), so any of the three calls would do; the
// same one is used anyway. Records the resumed job writes go nowhere, and it reads no input.
TlsStatus TlsStream::resumeDiscarding() {
  if (!asyncPaused()) return TlsStatus::Ok;
  static struct Discard final : CiphertextSink {
    bool writeCiphertext(const uint8_t*, size_t) override { return true; }
  } discard;
  sink_ = &discard;
  in_ = nullptr;
  in_len_ = 0;
  in_eof_ = true;
  uint8_t scratch[1];
  size_t n = 0;
  TlsStatus result = TlsStatus::Ok;
  switch (async_op_) {
    case AsyncOp::Read: result = read(scratch, sizeof(scratch), n); break;
    case AsyncOp::Write: result = write(scratch, sizeof(scratch), n); break;
    case AsyncOp::Handshake:
    case AsyncOp::None: result = handshake(); break;
  }
  failed_ = true;  // whatever happened, the session did not end normally: keep it out of the cache
  ERR_clear_error();
  return asyncPaused() ? TlsStatus::WantAsync : result;
}

bool TlsStream::close() {
  if (!ssl_ || !handshake_done_ || asyncPaused()) return false;
  clearStaleErrors();
  int ret = SSL_shutdown(ssl_.get());
  clearStaleErrors();
  return ret >= 0;
}

}  // namespace ringlb::tls
