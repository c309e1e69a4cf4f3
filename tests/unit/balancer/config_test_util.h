// Helpers shared by the configuration tests.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "balancer/config.h"

namespace ringlb::balancer::testing {

struct Parsed {
  std::optional<Config> config;
  std::vector<std::string> errors;
};

// parseConfig(text) with `path` in error locations (relative paths resolve against its dir).
inline Parsed parse(std::string_view text, const std::string& path = "t.toml") {
  Parsed out;
  out.config = parseConfig(text, path, out.errors);
  return out;
}

inline ::testing::AssertionResult contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

// One error per line, for failure messages.
inline std::string joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& error : errors) out += error + "\n";
  return out;
}

}  // namespace ringlb::balancer::testing
