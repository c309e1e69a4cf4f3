#include "tls/certificate_info.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <vector>

#include "tls/pem_files.h"

namespace ringlb::tls {
namespace {

std::string fromBio(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string timeText(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  ASN1_TIME_print(bio, t);  // "Sep  9 00:00:00 2020 GMT", as HAProxy prints it
  std::string out = fromBio(bio);
  BIO_free(bio);
  return out;
}

// HAProxy prints names in the legacy one-line form ("/C=FR/CN=example.com").
std::string oneLine(const X509_NAME* name) {
  char buf[1024];
  return X509_NAME_oneline(name, buf, sizeof(buf)) ? buf : "";
}

std::string serialHex(X509* x) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* hex = bn ? BN_bn2hex(bn) : nullptr;
  std::string out = hex ? hex : "";
  // BN_bn2hex drops leading zero bytes; HAProxy prints whole bytes: pad to an even length.
  if (out.size() % 2 == 1) out.insert(out.begin(), '0');
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string sanText(X509* x) {
  int index = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
  if (index < 0) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  X509V3_EXT_print(bio, X509_get_ext(x, index), 0, 0);  // "DNS:a, DNS:b, IP Address:..."
  std::string out = fromBio(bio);
  BIO_free(bio);
  return out;
}

std::string sha1Hex(X509* x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(x, EVP_sha1(), md, &n) != 1) return "";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string algorithm(X509* x) {
  EVP_PKEY* key = X509_get0_pubkey(x);
  if (key == nullptr) return "";
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return "RSA" + std::to_string(bits);
    case EVP_PKEY_EC: return "EC" + std::to_string(bits);
    default: return std::string(EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
  }
}

}  // namespace

std::string describeCertificate(const std::string& pem, const std::string& path, std::string* error) {
  std::vector<X509Ptr> chain;
  if (!parseCertificates(pem, path, &chain, error)) return "";
  if (chain.empty()) {
    *error = path + ": no certificate";
    return "";
  }
  X509* leaf = chain.front().get();
  std::string out;
  out += "Serial: " + serialHex(leaf) + "\n";
  out += "notBefore: " + timeText(X509_get0_notBefore(leaf)) + "\n";
  out += "notAfter: " + timeText(X509_get0_notAfter(leaf)) + "\n";
  out += "Subject Alternative Name: " + sanText(leaf) + "\n";
  out += "Algorithm: " + algorithm(leaf) + "\n";
  out += "SHA1 FingerPrint: " + sha1Hex(leaf) + "\n";
  out += "Subject: " + oneLine(X509_get_subject_name(leaf)) + "\n";
  out += "Issuer: " + oneLine(X509_get_issuer_name(leaf)) + "\n";
  for (size_t i = 1; i < chain.size(); ++i) {
    out += "Chain Subject: " + oneLine(X509_get_subject_name(chain[i].get())) + "\n";
    out += "Chain Issuer: " + oneLine(X509_get_issuer_name(chain[i].get())) + "\n";
  }
  return out;
}

}  // namespace ringlb::tls
