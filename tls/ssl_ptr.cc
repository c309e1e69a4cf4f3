#include "tls/ssl_ptr.h"

#include <openssl/err.h>

namespace ringlb::tls {

std::string opensslErrors() {
  std::string out;
  // ERR_get_error(3): oldest first. ERR_reason_error_string gives the short reason text
  // ("unknown cipher returned", "no cipher match"), which is what an operator can act on.
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    if (!out.empty()) out += "; ";
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof(buf));
      out += buf;
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
