#include "balancer/access_record.h"

#include <cstdio>

namespace ringlb::balancer {
namespace {

void appendJsonString(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\u%04x", u);
          out += esc;
        } else {
          out += c;  // UTF-8 passes through; certificate subjects are OpenSSL's RFC 2253 text
        }
    }
  }
  out += '"';
}

bool needsQuotes(std::string_view value) {
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

void AccessRecord::key(std::string_view key) {
  if (json_) {
    if (!out_.empty()) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
  } else {
    if (!out_.empty()) out_ += ' ';
    out_ += key;
    out_ += '=';
  }
}

void AccessRecord::add(std::string_view k, std::string_view value) {
  key(k);
  if (value.empty()) value = "-";
  if (json_) {
    appendJsonString(out_, value);
  } else if (needsQuotes(value)) {
    out_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    out_ += '"';
  } else {
    out_ += value;
  }
}

void AccessRecord::add(std::string_view k, uint64_t value) {
  key(k);
  out_ += std::to_string(value);
}

void AccessRecord::addMillis(std::string_view k, double ms) {
  key(k);
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", ms);
  out_ += text;
}

const std::string& AccessRecord::finish() {
  if (json_) out_ += '}';
  return out_;
}

}  // namespace ringlb::balancer
