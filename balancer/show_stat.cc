// "show info" and "show stat" of the runtime API (balancer/runtime_api.h).
//
// Column names and order follow HAProxy's management guide section 9.1 "CSV format", as
// HAProxy 2.5 prints them (fields 0..96, then the SSL stats module after "-"). Clients such as
// Octavia's HAProxyQuery and telegraf's haproxy input index columns by the header line, so
// the header must be exact; columns we have no data for stay empty, as HAProxy leaves fields
// that do not apply to a row type.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "balancer/runtime_api.h"

namespace ringlb::balancer {
namespace {

constexpr auto kColumns = std::to_array<std::string_view>({
    "pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
    "dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act",
    "bck", "chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle",
    "lbtot", "tracked", "type", "rate", "rate_lim", "rate_max", "check_status", "check_code",
    "check_duration", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
    "hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt", "srv_abrt", "comp_in",
    "comp_out", "comp_byp", "comp_rsp", "lastsess", "last_chk", "last_agt", "qtime", "ctime",
    "rtime", "ttime", "agent_status", "agent_code", "agent_duration", "check_desc", "agent_desc",
    "check_rise", "check_fall", "check_health", "agent_rise", "agent_fall", "agent_health", "addr",
    "cookie", "mode", "algo", "conn_rate", "conn_rate_max", "conn_tot", "intercepted", "dcon",
    "dses", "wrew", "connect", "reuse", "cache_lookups", "cache_hits", "srv_icur", "src_ilim",
    "qtime_max", "ctime_max", "rtime_max", "ttime_max", "eint", "idle_conn_cur", "safe_conn_cur",
    "used_conn_cur", "need_conn_est", "uweight", "agg_server_check_status",
    // The SSL stats module (HAProxy prints its fields after a "-" separator column).
    "-", "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"});

void unknownColumn() {}  // not constexpr: calling it in Col's constructor fails the build

// A column named at compile time: a name that is not in kColumns does not compile.
struct Col {
  size_t index;
  consteval Col(const char* name) : index(0) {  // NOLINT(google-explicit-constructor)
    const std::string_view n(name);
    while (index < kColumns.size() && kColumns[index] != n) ++index;
    if (index == kColumns.size()) unknownColumn();
  }
};

// One CSV row addressed by column name.
class Row {
 public:
  Row() { fields_.resize(kColumns.size()); }
  template <typename T>
  Row& set(Col column, const T& value) {
    if constexpr (std::is_convertible_v<T, std::string_view>) {
      fields_[column.index] = std::string(std::string_view(value));
    } else {
      fields_[column.index] = std::to_string(value);
    }
    return *this;
  }
  // RFC 4180 quoting for fields holding ',', '"' or a line break (check reasons can).
  void appendTo(std::string& out) const {
    for (const std::string& f : fields_) {
      if (f.find_first_of(",\"\r\n") == std::string::npos) {
        out += f;
      } else {
        out += '"';
        for (char c : f) {
          if (c == '\n' || c == '\r') c = ' ';
          if (c == '"') out += '"';
          out += c;
        }
        out += '"';
      }
      out += ',';  // HAProxy ends every line, header included, with a comma
    }
    out += '\n';
  }

 private:
  std::vector<std::string> fields_;
};

int64_t secondsSince(health::Clock::time_point then, health::Clock::time_point now) {
  if (then.time_since_epoch().count() == 0 || then > now) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(now - then).count();
}

int64_t downtimeSeconds(const health::StateSnapshot& s, health::Clock::time_point now) {
  health::Millis total = s.downtime;
  if (!s.up && s.down_since.time_since_epoch().count() != 0 && now > s.down_since) {
    total += std::chrono::duration_cast<health::Millis>(now - s.down_since);
  }
  return std::chrono::duration_cast<std::chrono::seconds>(total).count();
}

// HAProxy's check status codes (management guide 9.1, field 36) and their descriptions (the
// check_desc field), derived from what our checker recorded.
struct CheckCode {
  const char* code;
  const char* desc;
};

CheckCode checkCode(const health::StateSnapshot& s, health::CheckType type) {
  if (s.last_check.empty()) return {"INI", "Initializing"};
  if (s.last_check_ok) {
    if (type == health::CheckType::Http || type == health::CheckType::Https) return {"L7OK", "Layer7 check passed"};
    if (type == health::CheckType::Tls) return {"L6OK", "Layer6 check passed"};
    return {"L4OK", "Layer4 check passed"};
  }
  if (s.last_http_status != 0) return {"L7STS", "Layer7 wrong status"};
  const std::string& why = s.last_check;
  if (why.find("timeout") != std::string::npos) return {"L4TOUT", "Layer4 timeout"};
  if (why.rfind("TLS", 0) == 0) return {"L6RSP", "Layer6 invalid response"};
  return {"L4CON", "Layer4 connection problem"};
}

const char* algorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::RoundRobin: return "roundrobin";
    case Algorithm::LeastConn: return "leastconn";
    case Algorithm::PowerOfTwo: return "random(2)";
    case Algorithm::Maglev: return "maglev";
  }
  return "";
}

bool wanted(int type_bit, int type_mask, int iid, std::string_view proxy, int this_iid, const std::string& name) {
  if ((type_mask & type_bit) == 0) return false;
  if (!proxy.empty()) return proxy == name;
  return iid == -1 || iid == this_iid;
}

}  // namespace

const std::vector<std::string_view>& showStatColumns() {
  static const std::vector<std::string_view> columns(kColumns.begin(), kColumns.end());
  return columns;
}

std::string renderShowStat(const Runtime& rt, const ProcessInfo& info, int type_mask, int iid,
                           std::string_view proxy) {
  const auto now = health::Clock::now();
  std::string out = "# ";
  for (std::string_view c : kColumns) {
    out += c;
    out += ',';
  }
  out += '\n';
  // Proxy ids: listeners 1..L, then pools L+1..L+P (HAProxy numbers proxies in config order).
  for (const auto& lr : rt.listeners) {
    const ListenerConfig& lc = *lr->config;
    const int this_iid = static_cast<int>(lr->index) + 1;
    if (!wanted(1, type_mask, iid, proxy, this_iid, lc.name)) continue;
    const ListenerStats& st = lr->stats;
    Row row;
    row.set("pxname", lc.name).set("svname", "FRONTEND").set("scur", st.active.load());
    row.set("slim", lc.max_connections != 0 ? lc.max_connections : rt.config.global.max_connections);
    row.set("stot", st.accepted.load()).set("bin", st.bytes_in.load()).set("bout", st.bytes_out.load());
    // dreq: refused by policy (untrusted PROXY sender, no route); ereq: malformed input.
    row.set("dreq", st.refused_route.load() + st.refused_proxy.load()).set("dresp", 0);
    row.set("ereq", st.refused_hello.load()).set("dcon", st.rejected_limit.load()).set("dses", 0);
    row.set("status", "OPEN").set("pid", info.pid).set("iid", this_iid).set("sid", 0).set("type", 0);
    row.set("conn_tot", st.accepted.load()).set("mode", "tcp");
    row.set("ssl_sess", st.handshakes.load()).set("ssl_reused_sess", st.handshakes_resumed.load());
    row.set("ssl_failed_handshake", st.handshake_failures.load()).set("-", "-");
    row.appendTo(out);
  }
  for (const Pool& pool : rt.pools) {
    const int this_iid = static_cast<int>(rt.listeners.size() + pool.index) + 1;
    const bool servers = wanted(4, type_mask, iid, proxy, this_iid, pool.name);
    const bool backend = wanted(2, type_mask, iid, proxy, this_iid, pool.name);
    if (!servers && !backend) continue;
    const health::CheckType check_type = pool.config->health.type;
    uint64_t scur = 0, stot = 0, bin = 0, bout = 0, econ = 0, eresp = 0, wredis = 0, chkdown = 0;
    uint64_t weight = 0, act = 0, bck = 0, ssl = 0, ssl_reused = 0, ssl_failed = 0;
    int64_t lastchg = -1;
    for (const auto& b : pool.backends) {
      const BackendStats& st = b->stats();
      const health::StateSnapshot s = b->health().snapshot(now);
      const std::string status = s.status();
      const int64_t since = secondsSince(s.last_change, now);
      scur += static_cast<uint64_t>(std::max(0, st.active.load()));
      stot += st.connections_total.load();
      bin += st.bytes_in.load();
      bout += st.bytes_out.load();
      econ += st.connect_failures.load();
      eresp += st.resets.load();
      wredis += st.redispatches.load();
      chkdown += s.went_down;
      ssl += st.tls_handshakes.load();
      ssl_reused += st.tls_resumed.load();
      ssl_failed += st.tls_failures.load();
      if (s.accepts_new && s.weight > 0) {
        (b->backup ? bck : act) += 1;
        if (!b->backup) weight += s.effective_weight;
      }
      lastchg = lastchg < 0 ? since : std::min(lastchg, since);
      if (!servers) continue;
      Row row;
      row.set("pxname", pool.name).set("svname", b->name).set("qcur", 0).set("qmax", 0);
      row.set("scur", std::max(0, st.active.load())).set("stot", st.connections_total.load());
      row.set("bin", st.bytes_in.load()).set("bout", st.bytes_out.load()).set("dresp", 0);
      row.set("econ", st.connect_failures.load()).set("eresp", st.resets.load());
      row.set("wretr", 0).set("wredis", st.redispatches.load());
      row.set("status", status).set("weight", s.effective_weight).set("uweight", s.weight);
      row.set("act", b->backup ? 0 : 1).set("bck", b->backup ? 1 : 0);
      row.set("lastchg", since).set("downtime", downtimeSeconds(s, now));
      row.set("pid", info.pid).set("iid", this_iid).set("sid", b->index + 1);
      row.set("lbtot", st.connections_total.load()).set("type", 2);
      row.set("addr", b->address_text).set("mode", "tcp");
      if (s.checked) {
        const CheckCode code = checkCode(s, check_type);
        row.set("chkfail", s.check_failures).set("chkdown", s.went_down);
        row.set("check_status", code.code).set("check_desc", code.desc);
        if (s.last_http_status != 0) row.set("check_code", s.last_http_status);
        if (!s.last_check.empty()) {
          row.set("check_duration", s.last_latency.count()).set("last_chk", s.last_check);
        }
        row.set("check_rise", s.rise).set("check_fall", s.fall);
        row.set("check_health", s.up ? s.rise + s.fall - 1 - s.consecutive_fail : s.consecutive_ok);
      }
      row.set("-", "-").set("ssl_sess", st.tls_handshakes.load()).set("ssl_reused_sess", st.tls_resumed.load());
      row.set("ssl_failed_handshake", st.tls_failures.load());
      row.appendTo(out);
    }
    if (!backend) continue;
    const PoolStats& ps = *pool.stats;
    Row row;
    row.set("pxname", pool.name).set("svname", "BACKEND").set("qcur", 0).set("qmax", 0);
    row.set("scur", scur).set("stot", stot).set("bin", bin).set("bout", bout);
    row.set("dreq", ps.no_backend.load()).set("dresp", 0).set("econ", econ).set("eresp", eresp);
    row.set("wretr", 0).set("wredis", wredis);
    row.set("status", act + bck > 0 ? "UP" : "DOWN").set("weight", weight).set("act", act).set("bck", bck);
    row.set("chkdown", chkdown).set("lastchg", std::max<int64_t>(lastchg, 0));
    row.set("pid", info.pid).set("iid", this_iid).set("sid", 0).set("lbtot", stot).set("type", 1);
    row.set("mode", "tcp").set("algo", algorithmName(pool.config->algorithm));
    row.set("-", "-").set("ssl_sess", ssl).set("ssl_reused_sess", ssl_reused).set("ssl_failed_handshake", ssl_failed);
    row.appendTo(out);
  }
  return out;
}

namespace {

// "0d 0h08m16s", HAProxy's Uptime format.
std::string uptimeText(int64_t secs) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%lldd %lldh%02lldm%02llds", static_cast<long long>(secs / 86400),
                static_cast<long long>(secs / 3600 % 24), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf;
}

}  // namespace

std::string renderShowInfo(const Runtime& rt, const ProcessInfo& info) {
  const int64_t uptime = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - info.started).count());
  uint64_t ssl_conns = 0;
  for (const auto& lr : rt.listeners) ssl_conns += lr->stats.handshakes.load();
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string out;
  auto line = [&](std::string_view name, const std::string& value) {
    out.append(name).append(": ").append(value).append("\n");
  };
  // Field names as HAProxy's "show info" prints them (management guide 9.3), in its order.
  line("Name", "ringlb");
  line("Version", info.version);
  line("Nbthread", std::to_string(info.workers));
  line("Nbproc", "1");
  line("Process_num", "1");
  line("Pid", std::to_string(info.pid));
  line("Uptime", uptimeText(uptime));
  line("Uptime_sec", std::to_string(uptime));
  line("Start_time_sec", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                            info.started.time_since_epoch()).count()));
  line("Maxconn", std::to_string(info.max_connections));
  line("Hard_maxconn", std::to_string(info.max_connections));
  line("CurrConns", std::to_string(info.current_connections));
  line("CumConns", std::to_string(info.connections_total));
  line("CumSslConns", std::to_string(ssl_conns));
  line("BytesIn", std::to_string(info.bytes_in));
  line("BytesOut", std::to_string(info.bytes_out));
  line("Stopping", "0");
  line("node", host);
  line("description", "");
  return out;
}

}  // namespace ringlb::balancer
