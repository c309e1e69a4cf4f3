// Reading PEM certificates, keys, CA bundles and CRLs from files, with the error texts
// operators see at start-up and reload. Used by CertificateStore and ClientCredentials, once,
// before privileges are dropped; nothing here runs on the data path.
//
// Every function returns false / nullptr on failure and sets *error to "<path>: <what>".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tls/ssl_ptr.h"

namespace ringlb::tls {

// Whole file into *out. Error: "<path>: cannot read: <strerror>".
bool readFile(const std::string& path, std::string* out, std::string* error);

// Every certificate in a PEM file, in file order (leaf first for a chain). Zero certificates
// is not an error here (the caller decides); a malformed PEM block is.
bool parseCertificates(const std::string& pem, const std::string& path, std::vector<X509Ptr>* out,
                       std::string* error);

// The first private key in a PEM text, or nullptr with *error set. `*present` (optional) says
// whether any PRIVATE KEY block was found at all. Encrypted keys are refused (no prompt).
EvpPkeyPtr parsePrivateKey(const std::string& pem, const std::string& path, bool* present,
                           std::string* error);


// All certificates of a CA bundle file ("<path>: no certificate" if none).
bool loadCaFile(const std::string& path, std::vector<X509Ptr>* out, std::string* error);

// All certificates of every regular file in a directory (c_rehash layout or plain bundle
// files; files without certificates are skipped). Error if the directory cannot be read or
// holds no certificate at all.
bool loadCaDir(const std::string& dir, std::vector<X509Ptr>* out, std::string* error);

// All CRLs of a PEM file ("<path>: no CRL" if none).
bool loadCrlFile(const std::string& path, std::vector<X509CrlPtr>* out, std::string* error);

// "CN=foo,O=bar" (RFC 2253 order) for log lines.
std::string nameToString(const X509_NAME* name);

// The CN of a name, "" if none.
std::string commonName(const X509_NAME* name);

}  // namespace ringlb::tls
