#include "proxy/client_resets.hpp"

#include "access/client_ledger.hpp"
#include "account/metrics.hpp"
#include "log/log.hpp"
#include "usage/report.hpp"

namespace storecache::proxy {

namespace {

// A client's User-Agent inside our quotes: printable ASCII as is, the rest escaped, so a device
// cannot forge or break log lines.
std::string quoted_safe(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (const auto e = usage::backslash_escape(c); !e.empty())
      out += e;
    else if (c >= ' ' && c < 0x7f)
      out += c;
    else
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned char>(c));
  }
  return out;
}

}  // namespace

bool note_client_reset(connection_context& ctx, http::protocol p,
                       std::chrono::steady_clock::time_point now) {
  ctx.stats.client_reset(p);
  if (ctx.ledger == nullptr) return false;
  const auto& addr = ctx.client.address();
  if (!ctx.ledger->note_reset(addr, now)) return ctx.ledger->penalized(addr, now);
  // Once per penalty by construction: note_reset answers true only when a penalty starts.
  const auto& lim = ctx.cfg->limit;
  std::string_view ua = ctx.last_user_agent;
  if (ua.size() > 200) ua = ua.substr(0, 200);
  log::warn(
      "client {} over its budget: more than {} requests abandoned within {} ms (last on conn={} "
      "{}, user_agent=\"{}\"); it may start no upstream fetch for {} ms",
      access::client_ledger::canonical(addr).to_string(), lim.client_resets,
      lim.client_reset_window.count(), ctx.connection_id, to_string(p), quoted_safe(ua),
      lim.reset_penalty.count());
  return true;
}

}  // namespace storecache::proxy
