// RAII owners for OpenSSL handles, and the OpenSSL error queue as text.
//
// Contract: each alias owns exactly one reference of its object and releases it with the
// matching OpenSSL *_free function. To hand an object to an API that takes a reference of its
// own (e.g. SSL_CTX_use_certificate), keep ownership here; for the few set0/"takes ownership"
// APIs call release() after the call succeeded.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

namespace ringlb::tls {

template <auto FreeFn>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const noexcept { FreeFn(p); }
};

using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, OpenSslDeleter<SSL_SESSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, OpenSslDeleter<X509_CRL_free>>;

// Drains this thread's OpenSSL error queue into "reason; reason; ..." (empty if none).
// Call it right after the failing call: the queue is per thread and accumulates.
std::string opensslErrors();

// Appends " (<opensslErrors()>)" to `message` when the queue holds anything.
std::string withOpensslErrors(std::string message);

}  // namespace ringlb::tls
