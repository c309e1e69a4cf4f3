// The configuration loader's health and operations tables: [pool.health] (active checks),
// the pool's lifecycle keys (passive ejection, slow start), [admin] and the runtime socket.
#include <cctype>
#include <charconv>

#include "balancer/config_validator.h"

namespace ringlb::balancer::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr Named<health::CheckType> kCheckTypes[] = {{"none", health::CheckType::None},
                                                    {"tcp", health::CheckType::Tcp},
                                                    {"tls", health::CheckType::Tls},
                                                    {"http", health::CheckType::Http},
                                                    {"https", health::CheckType::Https}};
constexpr std::string_view kHealthKeys[] = {"type",  "interval", "fast_interval", "timeout",
                                            "rise",  "fall",     "port",          "method",
                                            "path",  "host",     "headers",       "expect_status",
                                            "expect_body", "tls"};
constexpr std::string_view kHttpKeys[] = {"method", "path", "host", "headers", "expect_status", "expect_body"};
constexpr std::string_view kAdminKeys[] = {"bind"};
constexpr std::string_view kExpectStatus =
    R"(status codes or ranges 100..599 like ["200"], ["2xx", "301"] or ["200-399"])";

// "200", "2xx", "200-399".
std::optional<health::StatusRange> parseStatus(std::string_view text) {
  auto number = [](std::string_view digits) -> std::optional<uint16_t> {
    uint16_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.size() != 3) return std::nullopt;
    if (value < 100 || value > 599) return std::nullopt;
    return value;
  };
  if (text.size() == 3 && (text.substr(1) == "xx" || text.substr(1) == "XX") && text[0] >= '1' && text[0] <= '5') {
    auto base = static_cast<uint16_t>((text[0] - '0') * 100);
    return health::StatusRange{base, static_cast<uint16_t>(base + 99)};
  }
  if (size_t dash = text.find('-'); dash != std::string_view::npos) {
    auto low = number(text.substr(0, dash));
    auto high = number(text.substr(dash + 1));
    if (!low || !high || *low > *high) return std::nullopt;
    return health::StatusRange{*low, *high};
  }
  if (auto value = number(text)) return health::StatusRange{*value, *value};
  return std::nullopt;
}

// RFC 9110 section 5.1 / 5.5: a field name is a token; a value has no CR, LF or NUL.
bool validHeaderLine(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (char c : line.substr(0, colon)) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  }
  return line.find_first_of("\r\n"sv.data(), colon, 2) == std::string_view::npos &&
         line.find('\0') == std::string_view::npos;
}

bool validToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (std::isupper(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

}  // namespace

void Validator::parseAdmin(const toml::table& root, AdminConfig& out) {
  const toml::table* table = readTable(Section{root, "the top-level table"}, "admin", "[admin]");
  if (!table) return;
  Section s{*table, "[admin]"};
  checkKeys(s, kAdminKeys);
  const toml::node* node = table->get("bind");
  if (!node) {
    fail(table->source(), "missing required key \"bind\" in [admin]",
         "the address of the metrics and status listener, e.g. \"127.0.0.1:8404\"");
    return;
  }
  auto address = readAddress(*node, "bind", s, /*listener=*/true);
  if (!address) return;
  registerBind(*node, *address, s.label);
  out.enabled = true;
  out.bind = std::move(*address);
}

void Validator::parseRuntimeSocket(const Section& s, GlobalConfig& out) {
  if (const toml::node* node = readString(s, "runtime_socket", out.runtime_socket)) {
    out.runtime_socket_where = at(node->source());
    if (out.runtime_socket.empty() || out.runtime_socket[0] != '/') {
      fail(node->source(), "runtime_socket " + quote(out.runtime_socket) + " in [global] is not an absolute path",
           "an absolute path for the unix socket, e.g. \"/run/ringlb/admin.sock\"");
    } else if (out.runtime_socket.size() >= 108) {  // sizeof(sockaddr_un::sun_path)
      fail(node->source(), "runtime_socket in [global] is longer than 107 bytes", "a shorter path (unix(7))");
    }
  }
  std::string mode;
  if (const toml::node* node = readString(s, "runtime_socket_mode", mode)) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), value, 8);
    if (ec != std::errc() || end != mode.data() + mode.size() || mode.size() < 3 || mode.size() > 4 || value > 0777) {
      fail(node->source(), "runtime_socket_mode " + quote(mode) + " in [global] is not an octal mode",
           R"(octal permission bits like "0600" or "0660")");
    } else {
      out.runtime_socket_mode = value;
    }
  }
}

void Validator::parseLifecycle(const Section& s, PoolConfig& out) {
  health::LifecycleConfig& life = out.lifecycle;
  readUint(s, "eject_after", life.eject_after, 0, 1000);
  readDuration(s, "eject_for", life.eject_for);
  readDuration(s, "eject_max", life.eject_max);
  if (life.eject_max < life.eject_for && s.table.contains("eject_max")) {
    fail(s.table.get("eject_max")->source(), "eject_max in " + s.label + " is shorter than eject_for",
         "eject_max >= eject_for (" + std::to_string(life.eject_for.count()) + " ms)");
  }
  if (s.table.contains("slow_start")) {
    std::string text;
    const toml::node* node = s.table.get("slow_start");
    if (node->as_string() && node->as_string()->get() == "0") {
      life.slow_start = Millis{0};
    } else {
      readDuration(s, "slow_start", life.slow_start);
    }
  }
}

void Validator::parseHttpCheck(const Section& s, health::HttpCheckConfig& out) {
  if (const toml::node* node = readString(s, "method", out.method); node && !validToken(out.method)) {
    fail(node->source(), "method " + quote(out.method) + " in " + s.label + " is not an HTTP method",
         "an upper-case method such as \"GET\", \"HEAD\" or \"OPTIONS\"");
  }
  if (const toml::node* node = readString(s, "path", out.path);
      node && (out.path.empty() || out.path[0] != '/' || out.path.find_first_of(" \r\n\t") != std::string::npos)) {
    fail(node->source(), "path " + quote(out.path) + " in " + s.label + " is not an absolute request path",
         "a path starting with \"/\" without spaces, e.g. \"/healthcheck\"");
  }
  if (const toml::node* node = readString(s, "host", out.host);
      node && out.host.find_first_of(" \r\n\t/") != std::string::npos) {
    fail(node->source(), "host " + quote(out.host) + " in " + s.label + " is not a host name",
         "a name like \"keystone.internal\" (optionally with :port)");
  }
  readStringList(s, "headers", out.headers);
  for (const std::string& line : out.headers) {
    if (!validHeaderLine(line)) {
      fail(s.table.get("headers")->source(), "header " + quote(line) + " in " + s.label + " is not \"Name: value\"",
           "header lines like \"X-Check: ringlb\" (a token, a colon, no CR/LF)");
    }
  }
  std::vector<std::string> statuses;
  readStringList(s, "expect_status", statuses);
  if (s.table.contains("expect_status")) {
    out.expect_status.clear();
    for (const std::string& text : statuses) {
      if (auto range = parseStatus(text)) {
        out.expect_status.push_back(*range);
      } else {
        fail(s.table.get("expect_status")->source(), "expect_status " + quote(text) + " in " + s.label + " is not valid",
             kExpectStatus);
      }
    }
    if (statuses.empty()) fail(s.table.get("expect_status")->source(), "empty expect_status in " + s.label, kExpectStatus);
  }
  readString(s, "expect_body", out.expect_body);
}

void Validator::parseHealth(const Section& pool, PoolConfig& out) {
  const toml::table* table = readTable(pool, "health", "[pool.health]");
  if (!table) return;
  out.health_where = at(table->source());
  Section s{*table, "[pool.health] of " + pool.label};
  checkKeys(s, kHealthKeys);
  health::CheckConfig& check = out.health;
  if (!table->contains("type")) {
    fail(table->source(), "missing required key \"type\" in " + s.label, "one of: " + enumNames(kCheckTypes));
  }
  readEnum(s, "type", check.type, kCheckTypes);
  readDuration(s, "interval", check.interval);
  check.fast_interval = std::min(check.fast_interval, check.interval);
  readDuration(s, "fast_interval", check.fast_interval);
  check.timeout = std::min(check.timeout, check.interval);
  readDuration(s, "timeout", check.timeout);
  readUint(s, "rise", check.rise, 1, 100);
  readUint(s, "fall", check.fall, 1, 100);
  readUint(s, "port", check.port, 1, 65535);
  if (check.timeout > check.interval && table->contains("timeout")) {
    fail(table->get("timeout")->source(), "timeout in " + s.label + " is longer than the interval",
         "timeout <= interval (" + std::to_string(check.interval.count()) + " ms)");
  }
  bool http = check.speaksHttp();
  for (std::string_view key : kHttpKeys) {
    if (!http && table->contains(key)) {
      fail(table->get(key)->source(), "\"" + std::string(key) + "\" in " + s.label + " needs type \"http\" or \"https\"",
           "type = \"http\" or \"https\", or no \"" + std::string(key) + "\" key");
    }
  }
  if (http) parseHttpCheck(s, check.http);
  const toml::table* tls_table = readTable(s, "tls", "[pool.health.tls]");
  if (tls_table && !check.speaksTls()) {
    fail(tls_table->source(), "[pool.health.tls] in " + pool.label + " needs type \"tls\" or \"https\"",
         "type = \"tls\" or \"https\", or no [pool.health.tls]");
  } else if (tls_table) {
    parseClientTls(Section{*tls_table, "[pool.health.tls] of " + pool.label}, check.tls);
    out.health_where = at(tls_table->source());
  } else if (check.speaksTls()) {
    if (out.tls.enabled) {
      check.tls = out.tls;  // the pool's own re-encryption settings
    } else {
      fail(table->source(), s.label + " checks with TLS but the pool has no [pool.tls]",
           "a [pool.health.tls] table (ca_file, sni, ...) for the check, or a [pool.tls]");
    }
  }
}

}  // namespace ringlb::balancer::config_detail
