// The runtime API against a Runtime built from config text, through a fake ControlHost whose
// commitCertificates() really rebuilds the Runtime with the PEM overlay.
#include "balancer/runtime_api.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "../tls/test_pki.h"
#include "config_test_util.h"
#include "tls/certificate_store.h"

namespace ringlb::balancer {
namespace {

using testing::contains;
namespace pki = tls::pki;

const pki::Ca& testCa() {
  static const pki::Ca ca = pki::makeCa("Runtime API CA");
  return ca;
}

class FakeHost : public ControlHost {
 public:
  std::shared_ptr<const Runtime> current() override { return runtime; }
  ProcessInfo processInfo() override {
    ProcessInfo info;
    info.version = "1.2.3-test";
    info.pid = 4242;
    info.started = std::chrono::system_clock::now() - std::chrono::seconds(3725);
    info.workers = 3;
    info.connections_total = 77;
    info.max_connections = 1000;
    info.current_connections = 5;
    return info;
  }
  ReloadOutcome reload() override {
    ++reloads;
    return reload_outcome;
  }
  ReloadOutcome commitCertificates(const std::map<std::string, std::string>& pem_by_path) override {
    last_overlay = pem_by_path;
    std::vector<std::string> errors, warnings;
    auto rt = Runtime::build(runtime->config, errors, warnings, nullptr, &pem_by_path);
    ReloadOutcome out;
    out.ok = rt != nullptr;
    out.messages = out.ok ? warnings : errors;
    if (rt) runtime = std::move(rt);
    return out;
  }

  std::shared_ptr<const Runtime> runtime;
  int reloads = 0;
  ReloadOutcome reload_outcome;
  std::map<std::string, std::string> last_overlay;
};

class RuntimeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_path_ = dir_.writeLeaf("www.pem", pki::makeLeaf(testCa(), pki::spec("www", {"www.test"})));
    std::string text = R"([[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
mode = "terminate"
default_pool = "api"
[listener.tls]
certificates = [")" + cert_path_ + R"("]

[[pool]]
name = "api"
[[pool.backend]]
name = "api-1"
address = "10.0.0.1:443"
weight = 10
[[pool.backend]]
name = "api-2"
address = "10.0.0.2:443"
backup = true

[[pool]]
name = "web"
algorithm = "least_conn"
[pool.health]
type = "tcp"
rise = 2
fall = 3
[[pool.backend]]
name = "web-1"
address = "10.0.1.1:80"
)";
    auto parsed = testing::parse(text);
    ASSERT_TRUE(parsed.config) << testing::joined(parsed.errors);
    std::vector<std::string> errors, warnings;
    host_.runtime = Runtime::build(std::move(*parsed.config), errors, warnings);
    ASSERT_TRUE(host_.runtime) << testing::joined(errors);
  }

  const Backend& backend(const std::string& pool, const std::string& name) {
    for (const Pool& p : host_.runtime->pools) {
      if (p.name != pool) continue;
      for (const auto& b : p.backends) {
        if (b->name == name) return *b;
      }
    }
    ADD_FAILURE() << "no backend " << pool << "/" << name;
    return *host_.runtime->pools[0].backends[0];
  }

  // show stat as rows of (column name -> value), keyed by "pxname/svname".
  std::map<std::string, std::map<std::string, std::string>> stat() {
    std::string csv = api_.execute("show stat\n");
    std::istringstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("# ", 0), 0u);
    std::vector<std::string> header = split(line.substr(2));
    std::map<std::string, std::map<std::string, std::string>> rows;
    while (std::getline(in, line) && !line.empty()) {
      std::vector<std::string> fields = split(line);
      EXPECT_EQ(fields.size(), header.size()) << line;
      auto& row = rows[fields[0] + "/" + fields[1]];
      for (size_t i = 0; i < fields.size() && i < header.size(); ++i) row[header[i]] = fields[i];
    }
    return rows;
  }

  // Every line ends with ','; no field in these tests is quoted.
  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1) {
      out.push_back(line.substr(start, comma - start));
    }
    EXPECT_EQ(start, line.size()) << "line does not end with ',': " << line;
    return out;
  }

  std::string newPem(const std::string& cn, bool with_key = true) {
    pki::Leaf leaf = pki::makeLeaf(testCa(), pki::spec(cn, {cn + ".test"}));
    std::string pem = pki::certPem(leaf.cert.get());
    if (with_key) pem += pki::keyPem(leaf.key.get());
    return pem;
  }

  pki::TempDir dir_;
  std::string cert_path_;
  FakeHost host_;
  RuntimeApi api_{host_};
};

TEST_F(RuntimeApiTest, ShowStatHeaderIsHaproxysColumnOrder) {
  const std::string csv = api_.execute("show stat");
  EXPECT_EQ(csv.rfind("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
                      "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
                      "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,",
                      0),
            0u)
      << csv.substr(0, 300);
  // Field numbers from the management guide, section 9.1.
  const auto& cols = showStatColumns();
  auto at = [&](std::string_view name) { return std::find(cols.begin(), cols.end(), name) - cols.begin(); };
  EXPECT_EQ(at("status"), 17);
  EXPECT_EQ(at("lbtot"), 30);
  EXPECT_EQ(at("type"), 32);
  EXPECT_EQ(at("check_status"), 36);
  EXPECT_EQ(at("last_chk"), 56);
  EXPECT_EQ(at("check_desc"), 65);
  EXPECT_EQ(at("addr"), 73);
  EXPECT_EQ(at("algo"), 76);
  EXPECT_EQ(at("uweight"), 99);
}

TEST_F(RuntimeApiTest, ShowStatHasFrontendServerAndBackendRows) {
  auto rows = stat();
  ASSERT_EQ(rows.size(), 6u);  // vip FRONTEND, api-1, api-2, api BACKEND, web-1, web BACKEND
  EXPECT_EQ(rows["vip/FRONTEND"]["type"], "0");
  EXPECT_EQ(rows["vip/FRONTEND"]["status"], "OPEN");
  EXPECT_EQ(rows["vip/FRONTEND"]["pid"], "4242");
  EXPECT_EQ(rows["api/api-1"]["type"], "2");
  EXPECT_EQ(rows["api/api-1"]["status"], "no check");
  EXPECT_EQ(rows["api/api-1"]["weight"], "10");
  EXPECT_EQ(rows["api/api-1"]["act"], "1");
  EXPECT_EQ(rows["api/api-1"]["bck"], "0");
  EXPECT_EQ(rows["api/api-1"]["addr"], "10.0.0.1:443");
  EXPECT_EQ(rows["api/api-1"]["check_status"], "");
  EXPECT_EQ(rows["api/api-2"]["bck"], "1");
  EXPECT_EQ(rows["api/BACKEND"]["type"], "1");
  EXPECT_EQ(rows["api/BACKEND"]["status"], "UP");
  EXPECT_EQ(rows["api/BACKEND"]["act"], "1");
  EXPECT_EQ(rows["web/BACKEND"]["algo"], "leastconn");
  EXPECT_EQ(rows["web/web-1"]["check_status"], "INI");
  EXPECT_EQ(rows["web/web-1"]["check_rise"], "2");
}

TEST_F(RuntimeApiTest, ShowStatCountsAndChecksComeFromTheBackendState) {
  const Backend& api1 = backend("api", "api-1");
  api1.stats().connections_total = 12;
  api1.stats().connect_failures = 2;
  api1.stats().active = 3;
  api1.stats().bytes_in = 100;
  const Backend& web1 = backend("web", "web-1");
  health::CheckResult fail;
  fail.reason = "connection refused";
  fail.latency = health::Millis(7);
  web1.health().onCheck(fail, health::Clock::now());
  auto rows = stat();
  EXPECT_EQ(rows["api/api-1"]["stot"], "12");
  EXPECT_EQ(rows["api/api-1"]["lbtot"], "12");
  EXPECT_EQ(rows["api/api-1"]["econ"], "2");
  EXPECT_EQ(rows["api/api-1"]["scur"], "3");
  EXPECT_EQ(rows["api/api-1"]["bin"], "100");
  EXPECT_EQ(rows["api/BACKEND"]["stot"], "12");
  EXPECT_EQ(rows["web/web-1"]["check_status"], "L4CON");
  EXPECT_EQ(rows["web/web-1"]["check_duration"], "7");
  EXPECT_EQ(rows["web/web-1"]["last_chk"], "connection refused");
  EXPECT_EQ(rows["web/web-1"]["chkfail"], "1");
  EXPECT_EQ(rows["web/web-1"]["status"], "UP 1/3");
}

TEST_F(RuntimeApiTest, ShowStatFiltersByProxyAndType) {
  const std::string csv = api_.execute("show stat api 4 -1");
  EXPECT_TRUE(contains(csv, "\napi,api-1,"));
  EXPECT_FALSE(contains(csv, "BACKEND"));
  EXPECT_FALSE(contains(csv, "vip,FRONTEND"));
}

TEST_F(RuntimeApiTest, StatusWordFollowsAdminState) {
  backend("api", "api-1").health().setAdmin(health::AdminState::Drain);
  EXPECT_EQ(stat()["api/api-1"]["status"], "DRAIN");
  backend("api", "api-1").health().setAdmin(health::AdminState::Maint);
  auto rows = stat();
  EXPECT_EQ(rows["api/api-1"]["status"], "MAINT");
  EXPECT_EQ(rows["api/BACKEND"]["act"], "0");
  EXPECT_EQ(rows["api/BACKEND"]["bck"], "1");  // the backup still takes connections
}

TEST_F(RuntimeApiTest, SetServerStateChangesAdminState) {
  const Backend& b = backend("api", "api-1");
  EXPECT_EQ(api_.execute("set server api/api-1 state drain\n"), "\n");
  EXPECT_EQ(b.health().admin(), health::AdminState::Drain);
  EXPECT_EQ(api_.execute("set server api/api-1 state maint"), "\n");
  EXPECT_EQ(b.health().admin(), health::AdminState::Maint);
  EXPECT_EQ(api_.execute("set server api/api-1 state ready"), "\n");
  EXPECT_EQ(b.health().admin(), health::AdminState::Ready);
  EXPECT_TRUE(contains(api_.execute("set server api/api-1 state sleepy"), "expects 'ready', 'drain' and 'maint'"));
  EXPECT_EQ(b.health().admin(), health::AdminState::Ready);
  EXPECT_EQ(api_.execute("disable server api/api-1"), "\n");
  EXPECT_EQ(b.health().admin(), health::AdminState::Maint);
}

TEST_F(RuntimeApiTest, SetServerWeightIsAbsoluteOrPercentOfConfigured) {
  const Backend& b = backend("api", "api-1");
  EXPECT_EQ(api_.execute("set server api/api-1 weight 5"), "\n");
  EXPECT_EQ(b.health().weight(), 5u);
  EXPECT_EQ(api_.execute("set server api/api-1 weight 50%"), "\n");
  EXPECT_EQ(b.health().weight(), 5u);  // 50% of the configured 10
  EXPECT_EQ(api_.execute("set server api/api-1 weight 200%"), "\n");
  EXPECT_EQ(b.health().weight(), 20u);
  EXPECT_EQ(api_.execute("set server api/api-1 weight 0"), "\n");
  EXPECT_EQ(stat()["api/api-1"]["uweight"], "0");
  EXPECT_TRUE(contains(api_.execute("set server api/api-1 weight 257"), "between 0 and 256"));
  EXPECT_TRUE(contains(api_.execute("set server api/api-1 weight many"), "Require <weight>"));
  EXPECT_EQ(b.health().weight(), 0u);
}

TEST_F(RuntimeApiTest, UnknownBackendServerAndCommandAreClearErrors) {
  EXPECT_EQ(api_.execute("set server nope/api-1 state drain"), "No such backend.\n\n");
  EXPECT_EQ(api_.execute("set server api/nope state drain"), "No such server.\n\n");
  EXPECT_EQ(api_.execute("set server api-1 state drain"), "Require 'backend/server'.\n\n");
  EXPECT_EQ(api_.execute("frobnicate all"),
            "Unknown command: 'frobnicate all'. Type 'help' for the list of commands.\n\n");
  EXPECT_TRUE(contains(api_.execute("help"), "show stat"));
}

TEST_F(RuntimeApiTest, CommandsAreSeparatedBySemicolonsAndNewlines) {
  const std::string out = api_.execute("set server api/api-1 state drain; set server api/api-2 weight 3\nshow info\n");
  EXPECT_EQ(backend("api", "api-1").health().admin(), health::AdminState::Drain);
  EXPECT_EQ(backend("api", "api-2").health().weight(), 3u);
  EXPECT_EQ(out.rfind("\n\nName: ringlb\n", 0), 0u) << out;
}

TEST_F(RuntimeApiTest, ShowInfoHasHaproxysFields) {
  const std::string out = api_.execute("show info");
  for (const char* line : {"Name: ringlb\n", "Version: 1.2.3-test\n", "Pid: 4242\n", "Nbthread: 3\n",
                           "Maxconn: 1000\n", "CurrConns: 5\n", "CumConns: 77\n", "Uptime: 0d 1h02m05s\n",
                           "Uptime_sec: 3725\n", "\nnode: "}) {
    EXPECT_TRUE(contains(out, line));
  }
}

TEST_F(RuntimeApiTest, SslCertStagedThenCommittedReplacesTheCertificate) {
  EXPECT_EQ(api_.execute("show ssl cert"), "# filename\n" + cert_path_ + "\n\n");
  const std::string pem = newPem("fresh");
  EXPECT_EQ(api_.execute("set ssl cert " + cert_path_ + " <<\n" + pem + "\n"),
            "Transaction created for certificate " + cert_path_ + "!\n\n");
  EXPECT_EQ(api_.execute("show ssl cert"), "# transaction\n*" + cert_path_ + "\n# filename\n" + cert_path_ + "\n\n");
  const std::string staged = api_.execute("show ssl cert *" + cert_path_);
  EXPECT_TRUE(contains(staged, "Filename: *" + cert_path_ + "\nStatus: Uncommitted\n"));
  EXPECT_TRUE(contains(staged, "Subject: /CN=fresh\n"));
  EXPECT_TRUE(contains(staged, "Subject Alternative Name: DNS:fresh.test\n"));
  EXPECT_TRUE(contains(staged, "Issuer: /CN=Runtime API CA\n"));
  EXPECT_TRUE(contains(api_.execute("show ssl cert " + cert_path_), "Subject: /CN=www\n"));

  const std::string commit = api_.execute("commit ssl cert " + cert_path_);
  EXPECT_TRUE(contains(commit, "Committing " + cert_path_ + "\n")) << commit;
  EXPECT_TRUE(contains(commit, "Success!\n")) << commit;
  EXPECT_EQ(host_.last_overlay.size(), 1u);
  EXPECT_EQ(host_.last_overlay[cert_path_], pem);
  const auto& store = host_.runtime->listener_tls[0].certificates;
  ASSERT_TRUE(store);
  EXPECT_NE(store->findByName("fresh.test"), nullptr);
  EXPECT_EQ(store->findByName("www.test"), nullptr);
  EXPECT_TRUE(api_.stagedCertificates().empty());
  EXPECT_TRUE(contains(api_.execute("show ssl cert " + cert_path_), "Subject: /CN=fresh\n"));
  EXPECT_TRUE(contains(api_.execute("show ssl cert " + cert_path_), "Status: Used\n"));
}

TEST_F(RuntimeApiTest, SslCertRefusesUnknownFilesAndBadPayloads) {
  EXPECT_TRUE(contains(api_.execute("set ssl cert /etc/other.pem <<\n" + newPem("x") + "\n"),
                       "not referenced by the configuration"));
  EXPECT_TRUE(contains(api_.execute("set ssl cert " + cert_path_ + " <<\nhello\n\n"), "unable to load"));
  pki::Leaf a = pki::makeLeaf(testCa(), pki::spec("a", {"a.test"}));
  pki::Leaf b = pki::makeLeaf(testCa(), pki::spec("b", {"b.test"}));
  const std::string mismatched = pki::certPem(a.cert.get()) + pki::keyPem(b.key.get());
  EXPECT_TRUE(contains(api_.execute("set ssl cert " + cert_path_ + " <<\n" + mismatched + "\n"),
                       "private key does not match"));
  EXPECT_TRUE(contains(api_.execute("set ssl cert " + cert_path_), "expects a filename and a certificate"));
  EXPECT_TRUE(api_.stagedCertificates().empty());
  EXPECT_EQ(api_.execute("commit ssl cert " + cert_path_), "No ongoing transaction! !\n\n");
}

TEST_F(RuntimeApiTest, SslCertAbortDropsTheTransaction) {
  api_.execute("set ssl cert " + cert_path_ + " <<\n" + newPem("gone") + "\n");
  ASSERT_EQ(api_.stagedCertificates().size(), 1u);
  EXPECT_EQ(api_.execute("abort ssl cert " + cert_path_),
            "Transaction aborted for certificate '" + cert_path_ + "'!\n\n");
  EXPECT_TRUE(api_.stagedCertificates().empty());
  EXPECT_EQ(api_.execute("abort ssl cert " + cert_path_), "No ongoing transaction!\n\n");
  EXPECT_TRUE(host_.last_overlay.empty());
}

TEST_F(RuntimeApiTest, FailedCommitReportsErrorsAndKeepsTheTransaction) {
  // No key in the payload and no "<file>.key": the rebuild fails, the old generation stays.
  auto before = host_.runtime;
  api_.execute("set ssl cert " + cert_path_ + " <<\n" + newPem("keyless", false) + "\n");
  const std::string out = api_.execute("commit ssl cert " + cert_path_);
  EXPECT_TRUE(contains(out, "Failed!\n")) << out;
  EXPECT_TRUE(contains(out, cert_path_)) << out;
  EXPECT_EQ(host_.runtime, before);
  EXPECT_EQ(api_.stagedCertificates().size(), 1u);
}

TEST_F(RuntimeApiTest, ReloadReportsTheHostsOutcome) {
  host_.reload_outcome = {false, {"t.toml:3:1: unknown key \"bnid\""}};
  EXPECT_EQ(api_.execute("reload"), "Success=0\n--\nt.toml:3:1: unknown key \"bnid\"\n\n");
  host_.reload_outcome = {true, {}};
  EXPECT_EQ(api_.execute("reload"), "Success=1\n--\n\n");
  EXPECT_EQ(host_.reloads, 2);
}

}  // namespace
}  // namespace ringlb::balancer
