// One access-log record: ordered fields rendered either as the text line (key=value, values
// with spaces, quotes or backslashes quoted and escaped) or as the body of a JSON object
// (RFC 8259 string escaping; numbers unquoted). The JSON form leaves out the opening brace:
// the access logger's pattern supplies `{"time":"...",` (see core/log.cc), so the time comes
// from the logger like in the text form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringlb::balancer {

class AccessRecord {
 public:
  explicit AccessRecord(bool json) : json_(json) {}
  void add(std::string_view key, std::string_view value);  // "" is written as "-"
  void add(std::string_view key, uint64_t value);
  void addMillis(std::string_view key, double ms);          // one decimal
  const std::string& finish();                              // the rendered record

 private:
  void key(std::string_view key);
  std::string out_;
  bool json_;
};

}  // namespace ringlb::balancer
