#include "tls/pem_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ringlb::tls {
namespace {

void setError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

BioPtr memBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// pem_password_cb(3) that supplies no passphrase: an encrypted key fails to load instead of
// OpenSSL prompting on the terminal.
int noPassphrase(char*, int, int, void*) { return 0; }

bool isEndOfPem() {
  // PEM_read_bio_*(3) at the end of input leaves PEM_R_NO_START_LINE on the queue.
  const unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return true;
  }
  return false;
}

}  // namespace

bool readFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    setError(error, path + ": cannot read: " + std::strerror(errno));
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    setError(error, path + ": cannot read: " + std::strerror(errno));
    return false;
  }
  *out = text.str();
  return true;
}

bool parseCertificates(const std::string& pem, const std::string& path, std::vector<X509Ptr>* out,
                       std::string* error) {
  BioPtr bio = memBio(pem);
  ERR_clear_error();
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
    if (!cert) break;
    out->push_back(std::move(cert));
  }
  if (!isEndOfPem()) {
    setError(error, withOpensslErrors(path + ": malformed certificate #" +
                                      std::to_string(out->size() + 1)));
    return false;
  }
  return true;
}

EvpPkeyPtr parsePrivateKey(const std::string& pem, const std::string& path, bool* present,
                           std::string* error) {
  const bool has_block = pem.find("PRIVATE KEY-----") != std::string::npos;
  if (present != nullptr) *present = has_block;
  if (!has_block) {
    setError(error, path + ": no private key");
    return nullptr;
  }
  BioPtr bio = memBio(pem);
  ERR_clear_error();
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
  if (!key) {
    const bool encrypted = pem.find("ENCRYPTED") != std::string::npos;
    setError(error, withOpensslErrors(path + (encrypted
                                                  ? ": private key is encrypted (not supported)"
                                                  : ": cannot parse private key")));
  }
  return key;
}

bool loadCaFile(const std::string& path, std::vector<X509Ptr>* out, std::string* error) {
  std::string pem;
  if (!readFile(path, &pem, error)) return false;
  const size_t before = out->size();
  if (!parseCertificates(pem, path, out, error)) return false;
  if (out->size() == before) {
    setError(error, path + ": no certificate");
    return false;
  }
  return true;
}

bool loadCaDir(const std::string& dir, std::vector<X509Ptr>* out, std::string* error) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    setError(error, dir + ": cannot read: " + ec.message());
    return false;
  }
  std::vector<std::string> files;
  for (const auto& entry : it) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  const size_t before = out->size();
  for (const auto& file : files) {
    std::string pem;
    std::string ignored;
    if (!readFile(file, &pem, error)) return false;
    parseCertificates(pem, file, out, &ignored);  // non-PEM files are skipped, like c_rehash
  }
  if (out->size() == before) {
    setError(error, dir + ": no certificate in directory");
    return false;
  }
  return true;
}

bool loadCrlFile(const std::string& path, std::vector<X509CrlPtr>* out, std::string* error) {
  std::string pem;
  if (!readFile(path, &pem, error)) return false;
  BioPtr bio = memBio(pem);
  ERR_clear_error();
  const size_t before = out->size();
  for (;;) {
    X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, noPassphrase, nullptr));
    if (!crl) break;
    out->push_back(std::move(crl));
  }
  if (!isEndOfPem()) {
    setError(error, withOpensslErrors(path + ": malformed CRL"));
    return false;
  }
  if (out->size() == before) {
    setError(error, path + ": no CRL");
    return false;
  }
  return true;
}

std::string nameToString(const X509_NAME* name) {
  if (name == nullptr) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  // X509_NAME_print_ex(3): RFC 2253 string, but without escaping UTF-8 to \XX sequences.
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return {};
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string commonName(const X509_NAME* name) {
  if (name == nullptr) return {};
  const int pos = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (pos < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace ringlb::tls
