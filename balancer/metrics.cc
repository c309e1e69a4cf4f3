// Prometheus text exposition (format 0.0.4,
// https://github.com/prometheus/docs/blob/main/content/docs/instrumenting/exposition_formats.md)
// and the plain status page.
#include "balancer/metrics.h"

#include <charconv>
#include <cstdio>
#include <map>
#include <vector>

namespace ringlb::balancer {
namespace {

// Label values escape backslash, double quote and line feed; HELP text escapes backslash and
// line feed only (exposition format, "Comments, help text, and type information").
std::string escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Samples are grouped by family in the output (the format requires a family's samples to be
// contiguous), while the code below walks entities: so each family buffers its own lines.
class Exposition {
 public:
  class Family {
   public:
    void add(const Labels& labels, uint64_t value) { line(labels, std::to_string(value)); }
    void add(const Labels& labels, double value) { line(labels, number(value)); }

   private:
    friend class Exposition;
    void line(const Labels& labels, const std::string& value) {
      body_ += name_;
      if (!labels.empty()) {
        body_ += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
          if (i) body_ += ',';
          body_.append(labels[i].first).append("=\"").append(escape(labels[i].second, true)).append("\"");
        }
        body_ += '}';
      }
      body_.append(" ").append(value).append("\n");
    }
    std::string name_;
    std::string body_;
  };

  Family& family(const std::string& name, std::string_view type, std::string_view help) {
    auto [it, inserted] = index_.try_emplace(name, families_.size());
    if (inserted) {
      families_.emplace_back();
      Family& f = families_.back();
      f.name_ = name;
      headers_.push_back("# HELP " + name + " " + escape(help, false) + "\n# TYPE " + name + " " +
                         std::string(type) + "\n");
    }
    return families_[it->second];
  }
  Family& counter(const std::string& name, std::string_view help) { return family(name, "counter", help); }
  Family& gauge(const std::string& name, std::string_view help) { return family(name, "gauge", help); }

  std::string text() const {
    std::string out;
    for (size_t i = 0; i < families_.size(); ++i) out += headers_[i] + families_[i].body_;
    return out;
  }

 private:
  std::vector<Family> families_;  // declaration order
  std::vector<std::string> headers_;
  std::map<std::string, size_t> index_;
};

void listenerMetrics(Exposition& e, const Runtime& rt) {
  for (const auto& lr : rt.listeners) {
    const ListenerStats& s = lr->stats;
    const std::string& name = lr->config->name;
    const Labels l{{"listener", name}};
    e.gauge("ringlb_listener_connections", "Live client connections.").add(l, uint64_t{s.active.load()});
    e.counter("ringlb_listener_connections_total", "Client connections accepted.").add(l, s.accepted.load());
    auto& refused = e.counter("ringlb_listener_refused_total",
                              "Client connections closed without being relayed, by reason.");
    refused.add({{"listener", name}, {"reason", "limit"}}, s.rejected_limit.load());
    refused.add({{"listener", name}, {"reason", "client_hello"}}, s.refused_hello.load());
    refused.add({{"listener", name}, {"reason", "no_route"}}, s.refused_route.load());
    refused.add({{"listener", name}, {"reason", "proxy_header"}}, s.refused_proxy.load());
    refused.add({{"listener", name}, {"reason", "no_backend"}}, s.backend_failures.load());
    e.counter("ringlb_listener_received_bytes_total", "Bytes received from clients (counted when a connection ends).")
        .add(l, s.bytes_in.load());
    e.counter("ringlb_listener_sent_bytes_total", "Bytes sent to clients (counted when a connection ends).")
        .add(l, s.bytes_out.load());
    e.counter("ringlb_listener_tls_handshakes_total", "Completed client TLS handshakes (terminating listeners).")
        .add(l, s.handshakes.load());
    e.counter("ringlb_listener_tls_resumed_total", "Client TLS handshakes that resumed a session.")
        .add(l, s.handshakes_resumed.load());
    e.counter("ringlb_listener_tls_handshake_failures_total", "Failed client TLS handshakes.")
        .add(l, s.handshake_failures.load());
  }
  for (const auto& lr : rt.listeners) {
    const ListenerConfig& c = *lr->config;
    for (int32_t r = 0; r <= static_cast<int32_t>(c.routes.size()); ++r) {
      const int32_t route = r == static_cast<int32_t>(c.routes.size()) ? -1 : r;
      const std::string label = ListenerRuntime::routeLabel(c, route);
      e.counter("ringlb_route_connections_total", "Connections routed by a listener's route (or its default).")
          .add({{"listener", c.name}, {"route", label}}, lr->route_stats[static_cast<size_t>(r)]->connections.load());
    }
  }
}

void backendMetrics(Exposition& e, const Runtime& rt) {
  const auto now = health::Clock::now();
  for (const Pool& pool : rt.pools) {
    uint64_t up = 0;
    for (const auto& b : pool.backends) {
      const BackendStats& st = b->stats();
      const health::StateSnapshot s = b->health().snapshot(now);
      if (s.accepts_new) ++up;
      const Labels l{{"pool", pool.name}, {"backend", b->name}};
      e.gauge("ringlb_backend_active_connections", "Live connections to the backend.")
          .add(l, uint64_t{static_cast<uint32_t>(std::max(0, st.active.load()))});
      e.counter("ringlb_backend_connections_total", "Connections established to the backend.")
          .add(l, st.connections_total.load());
      e.counter("ringlb_backend_connect_failures_total", "Connects to the backend that failed.")
          .add(l, st.connect_failures.load());
      e.counter("ringlb_backend_redispatches_total", "Connections retried on another backend after this one failed.")
          .add(l, st.redispatches.load());
      e.counter("ringlb_backend_resets_total", "Relayed connections the backend reset.").add(l, st.resets.load());
      e.counter("ringlb_backend_sent_bytes_total", "Bytes relayed from clients to the backend.")
          .add(l, st.bytes_in.load());
      e.counter("ringlb_backend_received_bytes_total", "Bytes relayed from the backend to clients.")
          .add(l, st.bytes_out.load());
      e.counter("ringlb_backend_tls_handshakes_total", "Completed TLS handshakes to the backend (re-encryption).")
          .add(l, st.tls_handshakes.load());
      e.counter("ringlb_backend_tls_resumed_total", "TLS handshakes to the backend that resumed a session.")
          .add(l, st.tls_resumed.load());
      e.counter("ringlb_backend_tls_failures_total", "Failed TLS handshakes or verifications to the backend.")
          .add(l, st.tls_failures.load());
      e.gauge("ringlb_backend_up", "1 if the backend takes new connections (ready, up, not ejected).")
          .add(l, uint64_t{s.accepts_new ? 1u : 0u});
      auto& admin = e.gauge("ringlb_backend_admin_state", "Administrative state: 1 for the current state.");
      for (auto state : {health::AdminState::Ready, health::AdminState::Drain, health::AdminState::Maint}) {
        admin.add({{"pool", pool.name}, {"backend", b->name}, {"state", health::adminStateName(state)}},
                  uint64_t{s.admin == state ? 1u : 0u});
      }
      e.gauge("ringlb_backend_weight", "Weight (configured, or set at run time).").add(l, uint64_t{s.weight});
      e.gauge("ringlb_backend_effective_weight", "Weight in use now (slow start applied).")
          .add(l, uint64_t{s.effective_weight});
      e.counter("ringlb_backend_checks_total", "Active health checks run.").add(l, s.checks);
      e.counter("ringlb_backend_check_failures_total", "Active health checks that failed.").add(l, s.check_failures);
      e.counter("ringlb_backend_went_down_total", "Transitions from up to down.").add(l, s.went_down);
      e.counter("ringlb_backend_ejections_total", "Passive ejections.").add(l, s.ejections);
      e.gauge("ringlb_backend_last_check_latency_seconds", "Duration of the last active health check.")
          .add(l, static_cast<double>(s.last_latency.count()) / 1000.0);
    }
    const Labels l{{"pool", pool.name}};
    e.counter("ringlb_pool_no_backend_total", "Connections refused because no backend took new connections.")
        .add(l, pool.stats->no_backend.load());
    e.counter("ringlb_pool_backup_used_total", "Connections sent to a backup backend.")
        .add(l, pool.stats->backup_used.load());
    e.gauge("ringlb_pool_backends_up", "Backends taking new connections.").add(l, up);
  }
}

}  // namespace

std::string renderPrometheus(const Runtime& rt, const ProcessInfo& info) {
  Exposition e;
  const double started =
      static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(info.started.time_since_epoch()).count()) /
      1000.0;
  e.gauge("ringlb_process_start_time_seconds", "Start time of the process since the Unix epoch.").add({}, started);
  e.gauge("ringlb_process_workers", "Worker threads.").add({}, uint64_t{info.workers});
  e.gauge("ringlb_process_max_connections", "Configured limit on live connections.").add({}, uint64_t{info.max_connections});
  e.gauge("ringlb_process_connections", "Live client connections, all listeners.").add({}, uint64_t{info.current_connections});
  e.counter("ringlb_process_global_limit_rejected_total", "Connections closed at accept: global limit reached.")
      .add({}, rt.rejected_global_limit.load());
  listenerMetrics(e, rt);
  backendMetrics(e, rt);
  return e.text();
}

std::string renderStatusPage(const Runtime& rt, const ProcessInfo& info) {
  const auto now = health::Clock::now();
  std::string out = "ringlb " + info.version + "  pid " + std::to_string(info.pid) + "  workers " +
                    std::to_string(info.workers) + "  connections " + std::to_string(info.current_connections) +
                    "/" + std::to_string(info.max_connections) + "\n\nlisteners\n";
  char buf[512];
  for (const auto& lr : rt.listeners) {
    const ListenerStats& s = lr->stats;
    std::snprintf(buf, sizeof(buf), "  %-24s %-11s active %-6u total %llu\n", lr->config->name.c_str(),
                  lr->config->mode == ListenerMode::Terminate ? "terminate" : "passthrough", s.active.load(),
                  static_cast<unsigned long long>(s.accepted.load()));
    out += buf;
  }
  for (const Pool& pool : rt.pools) {
    out += "\npool " + pool.name + "\n";
    std::snprintf(buf, sizeof(buf), "  %-20s %-24s %-10s %-9s %-7s %s\n", "backend", "address", "status", "weight",
                  "active", "last check");
    out += buf;
    for (const auto& b : pool.backends) {
      const health::StateSnapshot s = b->health().snapshot(now);
      std::string weight = std::to_string(s.effective_weight) + "/" + std::to_string(s.weight);
      std::string check = s.last_check.empty() ? "-" : s.last_check + " (" + std::to_string(s.last_latency.count()) + " ms)";
      std::snprintf(buf, sizeof(buf), "  %-20s %-24s %-10s %-9s %-7d %s%s\n", b->name.c_str(), b->address_text.c_str(),
                    s.status().c_str(), weight.c_str(), b->stats().active.load(), check.c_str(),
                    b->backup ? "  [backup]" : "");
      out += buf;
    }
  }
  return out;
}

}  // namespace ringlb::balancer
