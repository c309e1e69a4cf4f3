// The admin listener's two pages: Prometheus metrics (/metrics) and a plain-text status page
// (/). Pure functions of one configuration generation and the process figures; the control
// thread calls them per request (core/control_server.h serves them).
#pragma once

#include <string>
#include <string_view>

#include "balancer/runtime.h"
#include "balancer/runtime_api.h"

namespace ringlb::balancer {

// Prometheus text exposition format 0.0.4 ("text/plain; version=0.0.4"): every family has
// # HELP and # TYPE lines and its samples directly after them; names start with "ringlb_";
// counters end in "_total"; label values are escaped (\\, \", \n). Families:
//   process: start time, workers, max/current connections, global-limit rejections;
//   listener {listener}: connections (gauge), connections_total, refused_total{reason},
//     received/sent bytes, TLS handshakes/resumed/failures;
//   route {listener, route}: connections_total;
//   pool {pool}: no_backend_total, backup_used_total, backends_up;
//   backend {pool, backend}: active connections, connections/connect failures/resets,
//     bytes, TLS, up, admin_state{state}, weight, effective weight, checks, check failures,
//     went_down, ejections, last check latency.
std::string renderPrometheus(const Runtime& runtime, const ProcessInfo& info);
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// A human-readable status page (text/plain): process, listeners, pools, and per backend its
// status word, weight, live connections and last check.
std::string renderStatusPage(const Runtime& runtime, const ProcessInfo& info);

}  // namespace ringlb::balancer
