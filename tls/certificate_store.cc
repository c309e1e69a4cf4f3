#include "tls/certificate_store.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/privileges.h"
#include "tls/pem_files.h"

namespace ringlb::tls {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

KeyType keyTypeOf(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return KeyType::Rsa;
    case EVP_PKEY_EC: return KeyType::Ecdsa;
    default: return KeyType::Other;
  }
}

// DNS subjectAltNames (RFC 5280 s4.2.1.6), lower-cased; the CN only when there are none, as
// RFC 6125 s6.4.4 prescribes for clients.
std::vector<std::string> namesOf(X509* leaf) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name,
                                                            nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(sans, i);
    if (gen->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = gen->d.dNSName;
    names.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                           static_cast<size_t>(ASN1_STRING_length(dns)))));
  }
  GENERAL_NAMES_free(sans);
  if (names.empty()) {
    std::string cn = commonName(X509_get_subject_name(leaf));
    if (!cn.empty()) names.push_back(lower(cn));
  }
  return names;
}

enum class FileOutcome { Loaded, Skipped, Failed };

// One certificate file: chain, key (here or in "<path>.key"), key/cert match.
// The overlay's text for `path` if it has one, else the file.
bool readPem(const std::string& path, const PemOverlay* overlay, std::string* out, std::string* error) {
  if (overlay != nullptr) {
    if (auto it = overlay->find(path); it != overlay->end()) {
      *out = it->second;
      return true;
    }
  }
  return readFile(path, out, error);
}

FileOutcome loadCertificateFile(const std::string& path, bool skip_key_only, const PemOverlay* overlay,
                                std::unique_ptr<Certificate>* out,
                                CertificateStore::LoadResult* result) {
  std::string pem;
  std::string error;
  if (!readPem(path, overlay, &pem, &error)) {
    result->errors.push_back(error);
    return FileOutcome::Failed;
  }
  std::vector<X509Ptr> chain;
  if (!parseCertificates(pem, path, &chain, &error)) {
    result->errors.push_back(error);
    return FileOutcome::Failed;
  }
  if (chain.empty()) {
    if (skip_key_only && pem.find("PRIVATE KEY-----") != std::string::npos) {
      return FileOutcome::Skipped;
    }
    result->errors.push_back(path + ": no certificate");
    return FileOutcome::Failed;
  }
  const std::string key_path = path + ".key";
  // A replacement PEM that carries its key overrides a stale "<file>.key" on disk (as HAProxy's
  // "set ssl cert" does); otherwise the key comes from the overlay or disk copy of that file.
  const bool overlaid = overlay != nullptr && overlay->count(path) != 0;
  const bool key_inline = overlaid && pem.find("PRIVATE KEY-----") != std::string::npos;
  const bool separate_key =
      !key_inline && ((overlay != nullptr && overlay->count(key_path) != 0) || fileExists(key_path));
  std::string key_pem;
  if (separate_key && !readPem(key_path, overlay, &key_pem, &error)) {
    result->errors.push_back(error);
    return FileOutcome::Failed;
  }
  const std::string& key_file = separate_key ? key_path : path;
  EvpPkeyPtr key = parsePrivateKey(separate_key ? key_pem : pem, key_file, nullptr, &error);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key) {
    result->errors.push_back(separate_key ? error : error + " (and no " + key_path + ")");
    return FileOutcome::Failed;
  }
  if (auto warning = core::keyFilePermissionWarning(key_file); warning && !overlaid) {
    result->warnings.push_back(*warning);
  }
  // X509_check_private_key(3): compares the public halves; it does not validate the chain.
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    result->errors.push_back(path + ": private key does not match certificate" +
                             (separate_key ? " (key from " + key_path + ")" : std::string()));
    return FileOutcome::Failed;
  }
  auto cert = std::make_unique<Certificate>();
  cert->path = path;
  cert->leaf = std::move(chain.front());
  cert->chain.assign(std::make_move_iterator(chain.begin() + 1),
                     std::make_move_iterator(chain.end()));
  cert->key = std::move(key);
  cert->key_type = keyTypeOf(cert->key.get());
  cert->names = namesOf(cert->leaf.get());
  if (cert->key_type == KeyType::Other) {
    result->warnings.push_back(path + ": key type " +
                               EVP_PKEY_get0_type_name(cert->key.get()) +
                               " is neither RSA nor ECDSA; served only to clients that accept it");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->leaf.get())) < 0) {
    result->warnings.push_back(path + ": certificate has expired");
  }
  if (cert->names.empty()) {
    result->warnings.push_back(path + ": certificate has neither a DNS SAN nor a CN; "
                                      "served only as the default certificate");
  }
  *out = std::move(cert);
  return FileOutcome::Loaded;
}

std::vector<std::string> directoryFiles(const std::string& dir,
                                        CertificateStore::LoadResult* result) {
  std::vector<std::string> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    result->errors.push_back(dir + ": cannot read: " + ec.message());
    return files;
  }
  for (const auto& entry : it) {
    const std::string ext = entry.path().extension().string();
    if ((ext == ".pem" || ext == ".crt") && entry.is_regular_file(ec)) {
      files.push_back(entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  for (auto& file : files) file = (std::filesystem::path(dir) / file).string();
  return files;
}

}  // namespace

const char* keyTypeName(KeyType type) {
  switch (type) {
    case KeyType::Rsa: return "RSA";
    case KeyType::Ecdsa: return "ECDSA";
    case KeyType::Other: return "other";
  }
  return "other";
}

CertificateStore::LoadResult CertificateStore::load(const ServerTlsConfig& config, const PemOverlay* overlay) {
  LoadResult result;
  auto store = std::shared_ptr<CertificateStore>(new CertificateStore());
  std::vector<std::pair<std::string, bool>> files;  // path, from certificate_dir
  for (const auto& path : config.certificates) files.emplace_back(path, false);
  if (!config.certificate_dir.empty()) {
    for (auto& path : directoryFiles(config.certificate_dir, &result)) {
      files.emplace_back(std::move(path), true);
    }
  }
  // The default certificate need not be listed too: it is loaded (and served for its own
  // names) like the others.
  if (!config.default_certificate.empty() &&
      std::none_of(files.begin(), files.end(), [&](const auto& f) { return f.first == config.default_certificate; })) {
    files.emplace_back(config.default_certificate, false);
  }
  for (const auto& [path, from_dir] : files) {
    std::unique_ptr<Certificate> cert;
    if (loadCertificateFile(path, from_dir, overlay, &cert, &result) == FileOutcome::Loaded) {
      store->certs_.push_back(std::move(cert));
    }
  }
  if (store->certs_.empty() && result.errors.empty()) {
    result.errors.push_back(config.certificate_dir.empty()
                                ? "no server certificate configured"
                                : config.certificate_dir + ": no certificate (*.pem, *.crt)");
  }
  if (config.client_verify != ClientVerify::None) {
    std::string error;
    if (config.client_ca_file.empty()) {
      result.errors.push_back("client_verify is on but client_ca_file is not set");
    } else if (!loadCaFile(config.client_ca_file, &store->client_cas_, &error)) {
      result.errors.push_back(error);
    }
    if (!config.client_crl_file.empty() &&
        !loadCrlFile(config.client_crl_file, &store->client_crls_, &error)) {
      result.errors.push_back(error);
    }
  }
  if (result.errors.empty()) store->buildIdentities(config, &result);
  if (result.errors.empty()) result.store = std::move(store);
  return result;
}

void CertificateStore::buildIdentities(const ServerTlsConfig& config, LoadResult* result) {
  // name -> certificate indices, at most one per key type; first file wins.
  std::map<std::string, std::vector<size_t>> by_name;
  std::vector<std::string> name_order;
  for (size_t i = 0; i < certs_.size(); ++i) {
    for (const auto& name : certs_[i]->names) {
      auto [it, inserted] = by_name.try_emplace(name);
      if (inserted) name_order.push_back(name);
      auto same_type = std::find_if(it->second.begin(), it->second.end(), [&](size_t j) {
        return certs_[j]->key_type == certs_[i]->key_type;
      });
      if (same_type != it->second.end()) {
        result->warnings.push_back(certs_[i]->path + ": " + name + " already has an " +
                                   keyTypeName(certs_[i]->key_type) + " certificate from " +
                                   certs_[*same_type]->path + "; ignored for that name");
        continue;
      }
      it->second.push_back(i);
    }
  }
  std::map<std::vector<size_t>, size_t> identity_of_set;
  auto identityFor = [&](std::vector<size_t> set) {
    std::sort(set.begin(), set.end());
    auto [it, inserted] = identity_of_set.try_emplace(set, identities_.size());
    if (inserted) {
      Identity identity;
      identity.index = identities_.size();
      for (size_t j : set) identity.certificates.push_back(certs_[j].get());
      identities_.push_back(std::move(identity));
    }
    return it->second;
  };
  for (const auto& name : name_order) by_name_.emplace(name, identityFor(by_name[name]));

  size_t default_cert = 0;
  if (!config.default_certificate.empty()) {
    auto it = std::find_if(certs_.begin(), certs_.end(), [&](const auto& c) {
      return c->path == config.default_certificate;
    });
    if (it == certs_.end()) {
      result->errors.push_back("default_certificate \"" + config.default_certificate +
                               "\": not among the loaded certificates");
      return;
    }
    default_cert = static_cast<size_t>(it - certs_.begin());
  }
  // The default serves the whole identity of the default file's first name (so RSA and ECDSA
  // siblings come along), unless that identity does not contain the file itself.
  const Certificate* wanted = certs_[default_cert].get();
  if (!wanted->names.empty()) {
    const Identity& candidate = identities_[by_name_.find(wanted->names.front())->second];
    if (std::find(candidate.certificates.begin(), candidate.certificates.end(), wanted) !=
        candidate.certificates.end()) {
      default_ = candidate.index;
      return;
    }
  }
  default_ = identityFor({default_cert});
}

const Identity* CertificateStore::findByName(std::string_view server_name) const {
  if (!server_name.empty() && server_name.back() == '.') server_name.remove_suffix(1);
  // RFC 6066 s3: HostName is at most 255 bytes in practice (DNS limit, RFC 1035 s2.3.4).
  char buf[256];
  if (server_name.empty() || server_name.size() + 1 > sizeof(buf)) return nullptr;
  for (size_t i = 0; i < server_name.size(); ++i) {
    const char c = server_name[i];
    buf[i + 1] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view name(buf + 1, server_name.size());
  if (auto it = by_name_.find(name); it != by_name_.end()) return &identities_[it->second];
  // RFC 6125 s6.4.3: "*" matches exactly one (the left-most) label.
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot + 1 == name.size()) return nullptr;
  // name[dot] sits at buf[dot + 1]: put the '*' just before it, over the first label.
  buf[dot] = '*';
  const std::string_view wildcard(buf + dot, name.size() - dot + 1);
  if (auto it = by_name_.find(wildcard); it != by_name_.end()) return &identities_[it->second];
  return nullptr;
}

const Identity& CertificateStore::select(std::string_view server_name) const {
  const Identity* found = findByName(server_name);
  return found != nullptr ? *found : defaultIdentity();
}

}  // namespace ringlb::tls
