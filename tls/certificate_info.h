// Human-readable details of a PEM certificate, in the layout of HAProxy's "show ssl cert
// <file>" (management guide 9.3): used by the runtime API. Not on the data path.
#pragma once

#include <string>

namespace ringlb::tls {

// "Serial: ...\nnotBefore: ...\nnotAfter: ...\nSubject Alternative Name: ...\nAlgorithm: ...\n
// SHA1 FingerPrint: ...\nSubject: ...\nIssuer: ...\n" for the first certificate of `pem`,
// then "Chain Subject:"/"Chain Issuer:" for the others. Empty with *error set ("<path>: ...")
// when the text holds no parsable certificate.
std::string describeCertificate(const std::string& pem, const std::string& path, std::string* error);

}  // namespace ringlb::tls
