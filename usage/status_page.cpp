#include "usage/status_page.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>
#include <vector>

#include "usage/report.hpp"

namespace storecache::usage {

namespace {

using out_it = std::back_insert_iterator<std::string>;

std::string percent(double ratio) {
  return fmt::format("{:.1f} %", ratio * 100.0);
}

std::tm local_tm(std::int64_t unix_seconds, std::int64_t offset) {
  std::time_t t = static_cast<std::time_t>(unix_seconds + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

std::string hour_label(std::uint32_t hour, std::int64_t offset, const char* format) {
  std::tm tm = local_tm(std::int64_t{hour} * 3600, offset);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, format, &tm);
  return std::string(buf, n);
}

// The chart's scale: the power of two >= v, so that its quarters are round binary sizes.
std::uint64_t nice_ceiling(std::uint64_t v) {
  std::uint64_t p = 4;
  while (p < v && p < (std::uint64_t{1} << 62))
    p <<= 1;
  return p;
}

// Served vs upstream bytes per hour, as grouped bars. Every bar carries its hour and exact
// byte count (data-*) and a tooltip. An hour with prefetch bytes has one more bar, class
// "prefetch", over the bottom of its upstream bar: the part of the upstream bytes that prefetch
// fetched (the rest of the upstream bar is what devices asked for).
void hourly_chart(std::string& out, std::string_view id, const usage_summary& s,
                  std::int64_t offset, bool daily_labels) {
  constexpr double width = 960, height = 220, left = 100, right = 10, top = 12, bottom = 30;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const std::size_t n = std::max<std::size_t>(s.hours.size(), 1);
  std::uint64_t peak = 0;
  for (const auto& h : s.hours)
    peak = std::max({peak, h.bytes_served(), h.upstream_bytes});
  const std::uint64_t scale = nice_ceiling(std::max<std::uint64_t>(peak, 1024));
  const double band = plot_w / static_cast<double>(n);
  const double bar = std::max(band * 0.42, 0.5);
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "<svg id=\"{}\" class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" "
                 "aria-label=\"bytes served and bytes from upstream per hour\" "
                 "data-scale=\"{}\">\n",
                 id, width, height, scale);
  for (int g = 0; g <= 4; ++g) {
    const double y = top + plot_h - plot_h * g / 4.0;
    fmt::format_to(it,
                   "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>"
                   "<text class=\"axis\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                   left, y, width - right, y, left - 6, y + 4,
                   human_bytes(scale / 4 * static_cast<std::uint64_t>(g)));
  }
  for (std::size_t i = 0; i < s.hours.size(); ++i) {
    const auto& h = s.hours[i];
    const std::uint32_t hour = s.from_hour + static_cast<std::uint32_t>(i);
    const double x = left + band * static_cast<double>(i);
    const std::string when = hour_label(hour, offset, "%a %d %b %H:00");
    const std::string utc = hour_label(hour, 0, "%Y-%m-%dT%H:00Z");
    const struct {
      const char* cls;
      std::uint64_t bytes;
      double dx;
      const char* what;
    } bars[] = {{"served", h.bytes_served(), band * 0.06, "served to devices"},
                {"upstream", h.upstream_bytes, band * 0.06 + bar, "from upstream (WAN)"}};
    for (const auto& b : bars) {
      const double bh = plot_h * static_cast<double>(b.bytes) / static_cast<double>(scale);
      fmt::format_to(it,
                     "<rect class=\"{}\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" "
                     "height=\"{:.2f}\" data-hour=\"{}\" data-bytes=\"{}\"><title>{}: {} {}"
                     "</title></rect>\n",
                     b.cls, x + b.dx, top + plot_h - bh, bar, bh, utc, b.bytes, when,
                     human_bytes(b.bytes), b.what);
    }
    if (h.prefetch_bytes > 0) {
      const std::uint64_t pb = std::min(h.prefetch_bytes, h.upstream_bytes);
      const double bh = plot_h * static_cast<double>(pb) / static_cast<double>(scale);
      fmt::format_to(it,
                     "<rect class=\"prefetch\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" "
                     "height=\"{:.2f}\" data-hour=\"{}\" data-bytes=\"{}\"><title>{}: {} of the "
                     "upstream bytes fetched by prefetch</title></rect>\n",
                     x + band * 0.06 + bar, top + plot_h - bh, bar, bh, utc, h.prefetch_bytes, when,
                     human_bytes(h.prefetch_bytes));
    }
    const std::tm tm = local_tm(std::int64_t{hour} * 3600, offset);
    const bool label = daily_labels ? tm.tm_hour == 0 : tm.tm_hour % 3 == 0;
    if (label)
      fmt::format_to(it,
                     "<text class=\"axis\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}"
                     "</text>\n",
                     x + band / 2, height - 10,
                     hour_label(hour, offset, daily_labels ? "%a %d" : "%H:00"));
  }
  out += "</svg>\n";
}

struct named_counts {
  std::string name;
  usage_counts c;
};

// A table of rows with a share bar (share of requests).
void share_table(std::string& out, std::string_view id, std::string_view first_column,
                 std::vector<named_counts> rows, std::uint64_t total_requests, bool bytes) {
  std::stable_sort(rows.begin(), rows.end(), [](const named_counts& a, const named_counts& b) {
    return a.c.requests > b.c.requests;
  });
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "<div class=\"scroll\"><table "
                 "id=\"{}\"><thead><tr><th>{}</th><th>requests</th><th>share</th>",
                 id, first_column);
  if (bytes) out += "<th>served</th><th>from upstream</th><th>byte hit ratio</th>";
  out += "</tr></thead><tbody>\n";
  if (rows.empty())
    fmt::format_to(it, "<tr><td colspan=\"{}\" class=\"none\">no requests yet</td></tr>\n",
                   bytes ? 6 : 3);
  for (const auto& r : rows) {
    const double share =
        total_requests ? static_cast<double>(r.c.requests) / static_cast<double>(total_requests)
                       : 0.0;
    fmt::format_to(it,
                   "<tr><td>{}</td><td class=\"num\">{}</td><td><span class=\"share\"><span "
                   "style=\"width:{:.1f}%\"></span></span> {}</td>",
                   html_escape(r.name), r.c.requests, share * 100.0, percent(share));
    if (bytes) {
      const double bhr = r.c.bytes_served() ? static_cast<double>(r.c.bytes_from_cache) /
                                                  static_cast<double>(r.c.bytes_served())
                                            : 0.0;
      fmt::format_to(it, "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>",
                     human_bytes(r.c.bytes_served()), human_bytes(r.c.upstream_bytes),
                     percent(bhr));
    }
    out += "</tr>\n";
  }
  out += "</tbody></table></div>\n";
}

// What each access::denial means, for people.
std::string_view denial_display_name(access::denial d) {
  switch (d) {
    case access::denial::network:
      return "address not allowed (allow_clients)";
    case access::denial::client_cert:
      return "no valid device certificate";
    case access::denial::signature:
      return "signed URL missing, forged or expired";
    case access::denial::upstream:
      return "refused by the upstream";
  }
  return "";
}

// Access denials by reason, last 24 hours and last 7 days: one row per reason, always.
void refused_table(std::string& out, const usage_summary& day, const usage_summary& week) {
  auto it = std::back_inserter(out);
  out +=
      "<div class=\"scroll\"><table id=\"refused\"><thead><tr><th>reason</th><th></th>"
      "<th>last 24 hours</th><th>last 7 days</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < access::denial_count; ++i) {
    const auto d = static_cast<access::denial>(i);
    fmt::format_to(it,
                   "<tr data-reason=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
                   "<td class=\"num\">{}</td></tr>\n",
                   access::to_string(d), access::to_string(d), html_escape(denial_display_name(d)),
                   day.total.denied[i], week.total.denied[i]);
  }
  fmt::format_to(it,
                 "<tr class=\"sum\"><td>all</td><td></td><td class=\"num\">{}</td>"
                 "<td class=\"num\">{}</td></tr>\n</tbody></table></div>\n",
                 day.total.denied_total(), week.total.denied_total());
}

constexpr std::string_view style = R"(
:root{--served:#2f6fdf;--upstream:#e8833a;--prefetch:#8a5cd1;--ink:#1d2330;--muted:#5f6b7d;--line:#dde2ea}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:#f5f7fa}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b9c2d0;font-size:13px}
main{padding:16px 24px;max-width:1100px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 10px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px}
.chart{width:100%;height:auto}
.chart .served{fill:var(--served)}
.chart .upstream{fill:var(--upstream)}
.chart .prefetch{fill:var(--prefetch)}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .axis{fill:var(--muted);font-size:11px}
.legend i{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.none{color:var(--muted)}
td.asset{word-break:break-all}
tr.sum td{font-weight:600}
.share{display:inline-block;width:90px;height:9px;background:#e8ecf2;border-radius:4px;vertical-align:middle}
.share span{display:block;height:9px;background:var(--served);border-radius:4px}
.fill{height:14px;background:#e8ecf2;border-radius:7px;overflow:hidden}
.fill span{display:block;height:14px;background:var(--served)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px}
footer{color:var(--muted);font-size:12px;padding:0 24px 24px}
.scroll{overflow-x:auto}
@media (max-width:600px){main{padding:10px}section{padding:10px 12px}header{padding:12px}
.card b{font-size:18px}.chart .axis{font-size:24px}th,td{padding:4px 5px}}
tr.problem td{background:#fff4f2}
)";

// Prefetch: is the content there before the shift? The whole as one figure, then each source
// with what is missing or failed and why.
void prefetch_section(std::string& out, const status_inputs& in) {
  if (in.prefetch.empty()) return;
  auto it = std::back_inserter(out);
  std::uint64_t listed = 0, fresh = 0;
  bool pins = false;
  for (const auto& r : in.prefetch) {
    listed += r.state.listed;
    fresh += r.state.fresh;
    pins = pins || r.state.pinned_objects > 0 || r.state.unpinned_objects > 0;
  }
  const double ready = listed ? static_cast<double>(fresh) / static_cast<double>(listed) : 0.0;
  auto when = [&](std::int64_t t) {
    if (t == 0) return std::string("—");
    std::tm tm = local_tm(t, in.utc_offset_seconds);
    char buf[32];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return std::string(buf, n);
  };
  fmt::format_to(it,
                 "<section id=\"prefetch\"><h2>Prefetch</h2><div class=\"cards\">\n"
                 "<div class=\"card\"><b id=\"prefetch-ready\">{}</b><span>of {} listed "
                 "objects in the cache and fresh</span></div></div>\n<div class=\"scroll\"><table "
                 "id=\"prefetch-sources\"><thead><tr><th>source</th><th>ready</th><th>listed</th>"
                 "<th>fresh</th><th>missing</th><th>failed</th><th>size</th>{}<th>last run</th>"
                 "<th>next run</th><th>last error</th></tr></thead><tbody>\n",
                 listed ? percent(ready) : std::string("—"), listed, pins ? "<th>pinned</th>" : "");
  for (const auto& r : in.prefetch) {
    const prefetch_state& s = r.state;
    const double rr = s.listed ? static_cast<double>(s.fresh) / static_cast<double>(s.listed) : 0.0;
    std::string error = s.last_error;
    if (!r.listing_ok && error.empty()) error = "the listing cannot be read";
    std::string pinned;
    if (pins) {
      pinned = "<td class=\"num\">" + human_bytes(s.pinned_bytes);
      if (s.unpinned_objects > 0)
        pinned += fmt::format(" ({} objects, {} over max_pinned)", s.unpinned_objects,
                              human_bytes(s.unpinned_bytes));
      pinned += "</td>";
    }
    const bool problem = !r.listing_ok || s.failed > 0 || s.unpinned_objects > 0;
    fmt::format_to(it,
                   "<tr{}><td class=\"asset\">{} · {}</td><td class=\"num\">{}</td><td "
                   "class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td "
                   "class=\"num\">{}</td><td class=\"num\">{}</td>{}<td>{}</td><td>{}</td>"
                   "<td class=\"asset\">{}</td></tr>\n",
                   problem ? " class=\"problem\"" : "", html_escape(s.site), html_escape(s.source),
                   s.listed ? percent(rr) : std::string("—"), s.listed, s.fresh, s.missing,
                   s.failed, human_bytes(s.bytes), pinned, when(s.last_run_end),
                   r.running ? std::string("running") : when(s.next_run), html_escape(error));
  }
  out += "</tbody></table></div></section>\n";
}

}  // namespace

std::string render_status_page(const status_inputs& in) {
  std::string out;
  out.reserve(96 * 1024);
  auto it = std::back_inserter(out);
  const usage_summary& day = in.day;
  const usage_summary& week = in.week;
  const std::string generated = [&] {
    std::tm tm = local_tm(in.now_unix, in.utc_offset_seconds);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return std::string(buf, n);
  }();
  fmt::format_to(it,
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<meta http-equiv=\"refresh\" content=\"{}\">\n"
                 "<title>storecache — {}</title>\n<style>{}</style></head><body>\n"
                 "<header><h1>storecache on {}</h1><p>version {} · updated {} (local time) · "
                 "refreshes every {} s</p></header>\n<main>\n",
                 in.refresh_seconds, html_escape(in.host_name), style, html_escape(in.host_name),
                 html_escape(in.version), generated, in.refresh_seconds);

  // Headline figures for the last 24 hours, and the cache's fill.
  const double fill = in.cache_max_bytes ? static_cast<double>(in.cache_bytes) /
                                               static_cast<double>(in.cache_max_bytes)
                                         : 0.0;
  fmt::format_to(
      it,
      "<section id=\"headline\"><h2>Last 24 hours</h2><div class=\"cards\">\n"
      "<div class=\"card\"><b id=\"requests\">{}</b><span>requests</span></div>\n"
      "<div class=\"card\"><b id=\"hit-ratio\">{}</b><span>answered from the cache</span></div>\n"
      "<div class=\"card\"><b id=\"byte-hit-ratio\">{}</b><span>of bytes from the "
      "cache</span></div>\n"
      "<div class=\"card\"><b id=\"served\" data-bytes=\"{}\">{}</b><span>served to "
      "devices</span></div>\n"
      "<div class=\"card\"><b id=\"upstream\" data-bytes=\"{}\">{}</b><span>fetched over the "
      "WAN</span></div>\n"
      "<div class=\"card\"><b id=\"saved\" data-bytes=\"{}\">{}</b><span>WAN traffic "
      "saved</span></div>\n",
      day.total.requests, percent(day.hit_ratio()), percent(day.byte_hit_ratio()),
      day.total.bytes_served(), human_bytes(day.total.bytes_served()), day.total.upstream_bytes,
      human_bytes(day.total.upstream_bytes), day.wan_bytes_saved(),
      human_bytes(day.wan_bytes_saved()));
  // The WAN split, where prefetch is configured or fetched anything.
  if (!in.prefetch.empty() || day.total.prefetch_bytes > 0)
    fmt::format_to(it,
                   "<div class=\"card\"><b id=\"prefetch-bytes\" data-bytes=\"{}\">{}</b><span>of "
                   "the WAN traffic by prefetch</span></div>\n",
                   day.total.prefetch_bytes, human_bytes(day.total.prefetch_bytes));
  out += "</div></section>\n";
  fmt::format_to(it,
                 "<section id=\"cache-fill\"><h2>Cache fill</h2><div class=\"fill\"><span "
                 "style=\"width:{:.1f}%\"></span></div><p>{} of {} used ({}), {} objects "
                 "stored</p></section>\n",
                 std::min(fill, 1.0) * 100.0, human_bytes(in.cache_bytes),
                 human_bytes(in.cache_max_bytes), percent(fill), in.cache_objects);

  prefetch_section(out, in);

  auto legend = [](const usage_summary& s) {
    std::string l =
        "<p class=\"legend\"><i style=\"background:var(--served)\"></i>served to devices"
        "<i style=\"background:var(--upstream)\"></i>fetched from upstream (WAN)";
    if (s.total.prefetch_bytes > 0)
      l += "<i style=\"background:var(--prefetch)\"></i>of which by prefetch";
    return l + "</p>\n";
  };
  out += "<section><h2>Served vs upstream, last 24 hours (per hour)</h2>\n";
  out += legend(day);
  hourly_chart(out, "chart-24h", day, in.utc_offset_seconds, false);
  out += "</section>\n<section><h2>Served vs upstream, last 7 days (per hour)</h2>\n";
  out += legend(week);
  hourly_chart(out, "chart-7d", week, in.utc_offset_seconds, true);
  out += "</section>\n";

  // What kind of content, and which assets cost the WAN most (7 days).
  std::vector<named_counts> classes;
  for (int i = 0; i < content_class_count; ++i)
    if (week.content[static_cast<std::size_t>(i)].requests > 0 ||
        week.content[static_cast<std::size_t>(i)].upstream_bytes > 0)
      classes.push_back({std::string(display_name(static_cast<content_class>(i))),
                         week.content[static_cast<std::size_t>(i)]});
  out += "<section><h2>Content, last 7 days</h2>\n";
  share_table(out, "content", "content class", std::move(classes), week.total.requests, true);
  out += "</section>\n<section><h2>Top assets by upstream bytes, last 7 days</h2>\n";
  out +=
      "<div class=\"scroll\"><table "
      "id=\"top-assets\"><thead><tr><th>asset</th><th>requests</th><th>served</th>"
      "<th>from upstream</th></tr></thead><tbody>\n";
  if (week.top_assets.empty()) out += "<tr><td colspan=\"4\" class=\"none\">none yet</td></tr>\n";
  for (const auto& [name, c] : week.top_assets)
    fmt::format_to(it,
                   "<tr><td class=\"asset\">{}</td><td class=\"num\">{}</td><td "
                   "class=\"num\">{}</td><td class=\"num\" data-bytes=\"{}\">{}</td></tr>\n",
                   html_escape(name), c.requests, human_bytes(c.bytes_served()), c.upstream_bytes,
                   human_bytes(c.upstream_bytes));
  out += "</tbody></table></div></section>\n";

  // The device mix (7 days).
  auto rows = [](const auto& map, auto name_of) {
    std::vector<named_counts> v;
    for (const auto& [k, c] : map)
      v.push_back({name_of(k), c});
    return v;
  };
  auto same = [](std::string_view k) { return std::string(k); };
  out += "<section><h2>Devices, last 7 days</h2><div class=\"cols\"><div>\n";
  share_table(out, "devices", "system, browser", rows(week.devices, device_display_name),
              week.total.requests, false);
  out += "</div><div>\n";
  share_table(out, "os-versions", "system version", rows(week.os_versions, os_version_display_name),
              week.total.requests, false);
  share_table(out, "tls", "TLS version", rows(week.tls, same), week.total.requests, false);
  share_table(out, "protocols", "HTTP version", rows(week.protocols, same), week.total.requests,
              false);
  out += "</div></div></section>\n";

  // Access denials (requests and connections refused), by reason.
  out += "<section><h2>Refused, by reason</h2>\n";
  refused_table(out, day, week);
  out += "</section>\n</main>\n";
  out +=
      "<footer>Figures come from the usage history kept in the cache directory (hourly, 35 "
      "days). Prometheus metrics: <a href=\"/metrics\">/metrics</a> · health: <a "
      "href=\"/healthz\">/healthz</a> · the same figures on the command line: "
      "<code>storecache report --config FILE --since 24h</code></footer>\n</body></html>\n";
  return out;
}

}  // namespace storecache::usage
