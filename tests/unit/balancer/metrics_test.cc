// Prometheus exposition checked by a strict parser of text format 0.0.4: every sample
// belongs to a family declared (HELP and TYPE) just before its samples, names and label
// names are valid, label values are correctly escaped, values are floats, counters end in
// _total and are non-negative, and no series appears twice.
#include "balancer/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "config_test_util.h"

namespace ringlb::balancer {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Parsed {
  std::vector<std::string> errors;
  std::map<std::string, std::string> types;  // family -> type
  std::vector<Sample> samples;

  // The value of the one sample with this name and these labels (NaN if none).
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nan("");
  }
};

bool validName(std::string_view n, bool label) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(label && n.substr(0, 2) == "__");
}

bool parseValue(std::string_view text, double* out) {
  if (text == "+Inf" || text == "-Inf" || text == "NaN") {
    *out = text == "NaN" ? std::nan("") : (text[0] == '+' ? INFINITY : -INFINITY);
    return true;
  }
  std::string s(text);
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

Parsed parseExposition(const std::string& text) {
  Parsed p;
  auto fail = [&](size_t line_no, const std::string& what) {
    p.errors.push_back("line " + std::to_string(line_no) + ": " + what);
  };
  if (text.empty() || text.back() != '\n') p.errors.push_back("does not end with a line feed");
  std::set<std::string> helped, closed, series;
  std::string current;  // the family whose samples may follow
  std::istringstream in(text);
  std::string line;
  for (size_t no = 1; std::getline(in, line); ++no) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool help = line[2] == 'H';
      std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      const std::string name = rest.substr(0, sp);
      const std::string arg = sp == std::string::npos ? "" : rest.substr(sp + 1);
      if (!validName(name, false) || name.rfind("ringlb_", 0) != 0) fail(no, "bad family name " + name);
      if (name != current) {
        if (!current.empty()) closed.insert(current);
        if (closed.count(name)) fail(no, "family " + name + " declared again after other families");
        current = name;
      }
      if (help) {
        if (!helped.insert(name).second) fail(no, "second HELP for " + name);
        for (size_t i = 0; i < arg.size(); ++i) {
          if (arg[i] == '\\' && (i + 1 == arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n'))) fail(no, "bad HELP escape");
          if (arg[i] == '\\') ++i;
        }
      } else {
        if (p.types.count(name)) fail(no, "second TYPE for " + name);
        if (arg != "counter" && arg != "gauge" && arg != "untyped") fail(no, "unexpected type " + arg);
        p.types[name] = arg;
        if (arg == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total")) {
          fail(no, "counter " + name + " does not end in _total");
        }
      }
      continue;
    }
    if (line.empty() || line[0] == '#') {
      fail(no, "unexpected line: " + line);
      continue;
    }
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!validName(s.name, false)) fail(no, "bad metric name " + s.name);
    if (s.name != current) fail(no, "sample " + s.name + " outside its family's block");
    if (!helped.count(s.name) || !p.types.count(s.name)) fail(no, "sample " + s.name + " without HELP and TYPE");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) { fail(no, "label without '='"); break; }
        std::string lname = line.substr(i, eq - i);
        if (!validName(lname, true)) fail(no, "bad label name " + lname);
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') { fail(no, "label value not quoted"); break; }
        ++i;
        std::string value;
        bool closed_quote = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') { closed_quote = true; break; }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n') value += '\n';
            else if (e == '\\' || e == '"') value += e;
            else fail(no, std::string("bad label escape \\") + e);
            continue;
          }
          value += c;
        }
        if (!closed_quote) { fail(no, "unterminated label value"); break; }
        if (!s.labels.emplace(lname, value).second) fail(no, "duplicate label " + lname);
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size() || line[i] != '}') fail(no, "unterminated label set");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') { fail(no, "no space before the value"); continue; }
    std::string value_text = line.substr(i + 1);
    if (value_text.find(' ') != std::string::npos) fail(no, "timestamps are not expected: " + line);
    if (!parseValue(value_text, &s.value)) fail(no, "bad value " + value_text);
    if (p.types[s.name] == "counter" && !(s.value >= 0)) fail(no, "negative counter");
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "\x01" + k + "\x02" + v;
    if (!series.insert(key).second) fail(no, "duplicate series: " + line);
    p.samples.push_back(std::move(s));
  }
  for (const auto& [name, type] : p.types) {
    if (!helped.count(name)) p.errors.push_back("family " + name + " has TYPE but no HELP");
  }
  return p;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = testing::parse(R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
default_pool = "api"
[[listener.route]]
sni = "api.example.org"
pool = "api"

[[pool]]
name = "api"
[[pool.backend]]
name = "api-1"
address = "10.0.0.1:443"
weight = 4
[[pool.backend]]
name = "api-2"
address = "10.0.0.2:443"
)");
    ASSERT_TRUE(parsed.config) << testing::joined(parsed.errors);
    std::vector<std::string> errors, warnings;
    runtime_ = Runtime::build(std::move(*parsed.config), errors, warnings);
    ASSERT_TRUE(runtime_) << testing::joined(errors);
    info_.version = "test";
    info_.pid = 1;
    info_.started = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    info_.workers = 2;
  }

  std::unique_ptr<Runtime> runtime_;
  ProcessInfo info_;
};

TEST_F(MetricsTest, ExpositionPassesTheStrictParser) {
  const Parsed p = parseExposition(renderPrometheus(*runtime_, info_));
  EXPECT_TRUE(p.errors.empty()) << testing::joined(p.errors);
  EXPECT_GT(p.samples.size(), 40u);
}

TEST_F(MetricsTest, StrictParserRejectsMalformedExpositions) {
  // The parser is only as good as what it refuses.
  for (const char* bad : {
           "ringlb_x_total 1\n",                                                     // no HELP/TYPE
           "# HELP ringlb_x_total h\n# TYPE ringlb_x_total counter\nringlb_x_total{a=\"b\\q\"} 1\n",
           "# HELP ringlb_x h\n# TYPE ringlb_x counter\nringlb_x 1\n",                // counter name
           "# HELP ringlb_x h\n# TYPE ringlb_x gauge\nringlb_x{a=\"1\"} 1\nringlb_x{a=\"1\"} 2\n",
           "# HELP ringlb_x h\n# TYPE ringlb_x gauge\nringlb_x one\n",
           "# HELP ringlb_x h\n# TYPE ringlb_x gauge\nringlb_x{1a=\"1\"} 1\n",
           "# HELP ringlb_x h\n# TYPE ringlb_x gauge\n# HELP ringlb_y h\n# TYPE ringlb_y gauge\nringlb_x 1\n",
       }) {
    EXPECT_FALSE(parseExposition(bad).errors.empty()) << bad;
  }
}

TEST_F(MetricsTest, LabelValuesAreEscaped) {
  runtime_->pools[0].backends[0]->name = "we\"ird\\name\nx";
  const std::string text = renderPrometheus(*runtime_, info_);
  EXPECT_NE(text.find(R"(backend="we\"ird\\name\nx")"), std::string::npos);
  const Parsed p = parseExposition(text);
  EXPECT_TRUE(p.errors.empty()) << testing::joined(p.errors);
  EXPECT_EQ(p.value("ringlb_backend_weight", {{"pool", "api"}, {"backend", "we\"ird\\name\nx"}}), 4);
}

TEST_F(MetricsTest, SamplesReflectCountersAndState) {
  ListenerRuntime& vip = *runtime_->listeners[0];
  vip.stats.accepted = 9;
  vip.stats.active = 2;
  vip.stats.refused_hello = 3;
  vip.routeStats(0).connections = 5;
  vip.routeStats(-1).connections = 4;
  const Backend& b = *runtime_->pools[0].backends[1];
  b.stats().connections_total = 6;
  b.stats().connect_failures = 1;
  b.health().setAdmin(health::AdminState::Drain);
  runtime_->pools[0].stats->no_backend = 7;
  const Parsed p = parseExposition(renderPrometheus(*runtime_, info_));
  ASSERT_TRUE(p.errors.empty()) << testing::joined(p.errors);
  EXPECT_EQ(p.value("ringlb_listener_connections_total", {{"listener", "vip"}}), 9);
  EXPECT_EQ(p.value("ringlb_listener_connections", {{"listener", "vip"}}), 2);
  EXPECT_EQ(p.value("ringlb_listener_refused_total", {{"listener", "vip"}, {"reason", "client_hello"}}), 3);
  EXPECT_EQ(p.value("ringlb_route_connections_total", {{"listener", "vip"}, {"route", "sni=api.example.org"}}), 5);
  EXPECT_EQ(p.value("ringlb_route_connections_total", {{"listener", "vip"}, {"route", "default"}}), 4);
  const std::map<std::string, std::string> api2{{"pool", "api"}, {"backend", "api-2"}};
  EXPECT_EQ(p.value("ringlb_backend_connections_total", api2), 6);
  EXPECT_EQ(p.value("ringlb_backend_connect_failures_total", api2), 1);
  EXPECT_EQ(p.value("ringlb_backend_up", api2), 0);
  EXPECT_EQ(p.value("ringlb_backend_admin_state", {{"pool", "api"}, {"backend", "api-2"}, {"state", "drain"}}), 1);
  EXPECT_EQ(p.value("ringlb_backend_admin_state", {{"pool", "api"}, {"backend", "api-2"}, {"state", "ready"}}), 0);
  EXPECT_EQ(p.value("ringlb_pool_backends_up", {{"pool", "api"}}), 1);
  EXPECT_EQ(p.value("ringlb_pool_no_backend_total", {{"pool", "api"}}), 7);
  EXPECT_EQ(p.value("ringlb_process_start_time_seconds"), 1700000000);
  EXPECT_EQ(p.value("ringlb_process_workers"), 2);
  EXPECT_EQ(p.types.at("ringlb_backend_last_check_latency_seconds"), "gauge");
}

TEST_F(MetricsTest, StatusPageListsListenersPoolsAndBackends) {
  runtime_->pools[0].backends[0]->health().setAdmin(health::AdminState::Maint);
  const std::string page = renderStatusPage(*runtime_, info_);
  EXPECT_TRUE(testing::contains(page, "vip"));
  EXPECT_TRUE(testing::contains(page, "pool api"));
  EXPECT_TRUE(testing::contains(page, "api-1"));
  EXPECT_TRUE(testing::contains(page, "MAINT"));
  EXPECT_TRUE(testing::contains(page, "no check"));
}

}  // namespace
}  // namespace ringlb::balancer
