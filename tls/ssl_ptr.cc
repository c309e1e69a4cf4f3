#include "tls/ssl_ptr.h"

#include <openssl/err.h>

namespace ringlb::tls {

std::string opensslErrors() {
  std::string out;
  // ERR_get_error(3): oldest first. ERR_reason_error_string gives the short reason text
  // ("unknown cipher returned", "no cipher match"), which is what an operator can act on.
  const char* data = nullptr;
  int flags = 0;
  for (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags); code != 0;
       code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    if (!out.empty()) out += "; ";
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof(buf));
      out += buf;
    }
    // Detail the raiser attached ("strict_sni: no certificate for ...", a file name, ...).
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out;
}

std::string withOpensslErrors(std::string message) {
  std::string errors = opensslErrors();
  if (!errors.empty()) {
    message += " (";
    message += errors;
    message += ")";
  }
  return message;
}

}  // namespace ringlb::tls
