// `storecache report` as text, for the store's IT person: the headline figures with human and
// exact byte counts (upstream split into device-driven and prefetch), then aligned tables
// (content, devices, OS versions, TLS, protocols, sites, access denials by reason, top assets),
// then the prefetch readiness the daemon stored last. Times are shown in local time
// (opts.utc_offset_seconds) with the offset written out. Every name passes terminal_safe
// (text_escape.cpp) on its way out.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>

#include "usage/report.hpp"

namespace storecache::usage {

namespace {

std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string percent(double ratio) {
  return fmt::format("{:.1f} %", ratio * 100.0);
}

double ratio(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

struct civil {
  int year;
  unsigned month, day, hour, minute;
};

civil civil_time(std::int64_t unix_seconds) {
  using namespace std::chrono;
  const sys_seconds t{seconds(unix_seconds)};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const auto in_day = duration_cast<minutes>(t - day).count();
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), static_cast<unsigned>(in_day / 60),
          static_cast<unsigned>(in_day % 60)};
}

std::string local_time(std::int64_t unix_seconds, std::int64_t offset) {
  const civil c = civil_time(unix_seconds + offset);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute);
}

std::string zone(std::int64_t offset) {
  if (offset == 0) return "UTC";
  const std::int64_t a = offset < 0 ? -offset : offset;
  return fmt::format("UTC{}{:02}:{:02}", offset < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
}

// A table: first column left-aligned, the others right-aligned, two spaces apart. With
// name_last, the last column is the left-aligned one (long names go at the end of the line).
class table {
 public:
  explicit table(std::vector<std::string> head, bool name_last = false) : name_last_(name_last) {
    rows_.push_back(std::move(head));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }
  void render(std::string& out) const {
    std::vector<std::size_t> w;
    for (const auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], width(r[i]));
      }
    for (const auto& r : rows_) {
      std::string line = "  ";
      for (std::size_t i = 0; i < r.size(); ++i) {
        const std::string pad(w[i] - width(r[i]), ' ');
        const bool left = name_last_ ? i + 1 == r.size() : i == 0;
        if (i > 0) line += "  ";
        line += left ? r[i] + pad : pad + r[i];
      }
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
      out += line + "\n";
    }
  }

 private:
  // Code points, not bytes: names may be UTF-8.
  static std::size_t width(const std::string& s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  }
  std::vector<std::vector<std::string>> rows_;
  bool name_last_ = false;
};

using named_counts = std::map<std::string, usage_counts, std::less<>>;

// Requests and their share of all requests, busiest first.
void share_table(std::string& out, std::string_view title, const named_counts& m, std::uint64_t all,
                 std::string (*name)(std::string_view)) {
  if (m.empty()) return;
  std::vector<std::pair<std::string_view, const usage_counts*>> rows;
  for (const auto& [k, c] : m)
    rows.emplace_back(k, &c);
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second->requests > b.second->requests;
  });
  table t({std::string(title), "requests", "share", "served"});
  for (const auto& [k, c] : rows)
    t.add({name(k), grouped(c->requests), percent(ratio(c->requests, all)),
           human_bytes(c->bytes_served())});
  out += "\n";
  t.render(out);
}

std::string plain_name(std::string_view key) {
  return terminal_safe(key);
}

// Access denials by reason: all of them (refusals before a site was known included), then
// each site that had any. Nothing when there were none (the headline says 0).
void refused_table(std::string& out, const usage_summary& s) {
  if (s.total.denied_total() == 0) return;
  std::vector<std::string> head{"Refused"};
  for (std::size_t i = 0; i < access::denial_count; ++i)
    head.emplace_back(access::to_string(static_cast<access::denial>(i)));
  table t(std::move(head));
  auto row = [&](std::string name, const usage_counts& c) {
    std::vector<std::string> r{std::move(name)};
    for (std::uint64_t n : c.denied)
      r.push_back(grouped(n));
    t.add(std::move(r));
  };
  row("all", s.total);
  for (const auto& [name, c] : s.sites)
    if (c.denied_total() > 0) row(terminal_safe(name), c);
  out += "\n";
  t.render(out);
}

std::string period_name(std::uint32_t hours) {
  if (hours % 24 == 0 && hours > 24) return fmt::format("last {} days", hours / 24);
  return fmt::format("last {} hour{}", hours, hours == 1 ? "" : "s");
}

// The prefetch readiness as stored: a summary line, a table per source, then each source's
// last error on a line of its own (they are long). Nothing when no source was stored.
void prefetch_section(std::string& out, const prefetch_snapshot& p, std::int64_t off) {
  if (p.sources.empty()) return;
  out += fmt::format("\nprefetch: {} of {} source{} ready", p.ready_count(), p.sources.size(),
                     p.sources.size() == 1 ? "" : "s");
  if (p.saved_unix > 0)
    out +=
        fmt::format(" (as the daemon saved it at {} {})", local_time(p.saved_unix, off), zone(off));
  out += "\n";
  auto when = [&](std::int64_t t, const char* none) {
    return t > 0 ? local_time(t, off) : std::string(none);
  };
  table t({"Prefetch", "ready", "listed", "fresh", "missing", "failed", "size", "pinned",
           "last run", "next run"});
  for (const auto& r : p.sources) {
    t.add({terminal_safe(r.site) + " · " + terminal_safe(r.source),
           r.listed ? percent(ratio(r.fresh, r.listed)) : std::string("-"), grouped(r.listed),
           grouped(r.fresh), grouped(r.missing), grouped(r.failed), human_bytes(r.bytes),
           fmt::format("{} ({})", grouped(r.pinned_objects), human_bytes(r.pinned_bytes)),
           when(r.last_run_end, "never"), when(r.next_run, "unknown")});
  }
  t.render(out);
  for (const auto& r : p.sources)
    if (!r.last_error.empty())
      out += fmt::format("  {} · {}: last error: {}\n", terminal_safe(r.site),
                         terminal_safe(r.source), terminal_safe(r.last_error));
}

std::string render_text(const usage_summary& s, const report_options& opts) {
  const std::int64_t off = opts.utc_offset_seconds;
  const std::int64_t from = static_cast<std::int64_t>(s.from_hour) * 3600;
  const std::int64_t to = (static_cast<std::int64_t>(s.to_hour) + 1) * 3600;
  std::string out = fmt::format("storecache usage, {}: {} to {} ({})\n", period_name(opts.hours),
                                local_time(from, off), local_time(to, off), zone(off));
  const usage_counts& t = s.total;
  if (t.requests == 0 && t.upstream_requests == 0 && t.denied_total() == 0) {
    out += "\nno traffic in this period\n";
    prefetch_section(out, s.prefetch, off);
    return out;
  }
  const bool prefetched = t.prefetch_bytes > 0 || t.prefetch_requests > 0;

  auto bytes = [](std::uint64_t n) { return std::pair{human_bytes(n), grouped(n) + " bytes"}; };
  table head({"", "", "", ""});
  head.add({"Requests", grouped(t.requests), "", ""});
  head.add({"  answered from cache", grouped(t.hits), "", percent(s.hit_ratio())});
  auto [served_h, served_x] = bytes(t.bytes_served());
  head.add({"Bytes served", served_h, served_x, ""});
  auto [cache_h, cache_x] = bytes(t.bytes_from_cache);
  head.add({"  from cache", cache_h, cache_x, percent(s.byte_hit_ratio())});
  auto [up_h, up_x] = bytes(t.bytes_from_upstream);
  head.add(
      {"  passed through", up_h, up_x, percent(ratio(t.bytes_from_upstream, t.bytes_served()))});
  auto [wan_h, wan_x] = bytes(t.upstream_bytes);
  head.add({"Upstream (WAN)", wan_h, wan_x, grouped(t.upstream_requests) + " requests"});
  auto [dev_h, dev_x] = bytes(t.device_upstream_bytes());
  head.add({"  device-driven", dev_h, dev_x, grouped(t.device_upstream_requests()) + " requests"});
  auto [pre_h, pre_x] = bytes(t.prefetch_bytes);
  head.add({"  prefetch", pre_h, pre_x, grouped(t.prefetch_requests) + " requests"});
  auto [saved_h, saved_x] = bytes(s.wan_bytes_saved());
  head.add({"WAN bytes saved", saved_h, saved_x, ""});
  head.add({"Refused (access)", grouped(t.denied_total()), "", ""});
  std::string peak_text = "none (nothing fetched upstream)";
  if (const auto peak = s.peak_upstream_hour()) {
    const std::int64_t p = static_cast<std::int64_t>(*peak) * 3600;
    const usage_counts& ph = s.hours[*peak - s.from_hour];
    peak_text =
        fmt::format("{} to {} ({}): {}", local_time(p, off), local_time(p + 3600, off).substr(11),
                    zone(off), human_bytes(ph.upstream_bytes));
    if (ph.prefetch_bytes > 0)
      peak_text += fmt::format(" (prefetch {})", human_bytes(ph.prefetch_bytes));
  }
  out += "\n";
  {
    std::string h;
    head.render(h);
    out += h.substr(h.find('\n') + 1);  // no heading row for the headline figures
    // The peak's text is wider than the columns: on its own line, after the same label width.
    const std::size_t label_width = std::string_view("  answered from cache").size();
    out += fmt::format("  {:<{}}  {}\n", "Peak upstream hour", label_width, peak_text);
  }

  // A "prefetch" column (of the upstream bytes) in the content, sites and assets tables when
  // the period had any prefetch.
  auto with_prefetch = [&](std::vector<std::string> row, const usage_counts* c) {
    if (prefetched) row.push_back(c ? human_bytes(c->prefetch_bytes) : "prefetch");
    return row;
  };
  table content(with_prefetch(
      {"Content", "requests", "hit ratio", "served", "from cache", "upstream"}, nullptr));
  for (int i = 0; i < content_class_count; ++i) {
    const usage_counts& c = s.content[static_cast<std::size_t>(i)];
    if (c == usage_counts{}) continue;
    content.add(with_prefetch(
        {std::string(display_name(static_cast<content_class>(i))), grouped(c.requests),
         percent(ratio(c.hits, c.requests)), human_bytes(c.bytes_served()),
         percent(ratio(c.bytes_from_cache, c.bytes_served())), human_bytes(c.upstream_bytes)},
        &c));
  }
  if (!content.empty()) {
    out += "\n";
    content.render(out);
  }

  share_table(out, "Devices", s.devices, t.requests, device_display_name);
  share_table(out, "OS versions", s.os_versions, t.requests, os_version_display_name);
  share_table(out, "TLS", s.tls, t.requests, plain_name);
  share_table(out, "Protocols", s.protocols, t.requests, plain_name);

  if (!s.sites.empty()) {
    table sites(with_prefetch({"Sites", "requests", "hit ratio", "served", "upstream"}, nullptr));
    for (const auto& [name, c] : s.sites)
      sites.add(with_prefetch(
          {terminal_safe(name), grouped(c.requests), percent(ratio(c.hits, c.requests)),
           human_bytes(c.bytes_served()), human_bytes(c.upstream_bytes)},
          &c));
    out += "\n";
    sites.render(out);
  }

  refused_table(out, s);

  if (!s.top_assets.empty()) {
    // The name stays last (left-aligned): the prefetch column goes before it.
    std::vector<std::string> head{"upstream"};
    if (prefetched) head.emplace_back("prefetch");
    for (const char* h : {"requests", "served", "top assets by upstream bytes"})
      head.emplace_back(h);
    table assets(std::move(head), true);
    for (const auto& [name, c] : s.top_assets) {
      std::vector<std::string> row{human_bytes(c.upstream_bytes)};
      if (prefetched) row.push_back(human_bytes(c.prefetch_bytes));
      row.push_back(grouped(c.requests));
      row.push_back(human_bytes(c.bytes_served()));
      row.push_back(terminal_safe(name));
      assets.add(std::move(row));
    }
    out += "\n";
    assets.render(out);
  }
  prefetch_section(out, s.prefetch, off);
  return out;
}

}  // namespace

std::string device_display_name(std::string_view key) {
  const auto slash = key.find('/');
  const std::string_view os = key.substr(0, slash);
  const std::string_view browser = slash == std::string_view::npos ? "" : key.substr(slash + 1);
  std::string out;
  for (int i = 0; i < os_family_count; ++i)
    if (label(static_cast<os_family>(i)) == os) out = display_name(static_cast<os_family>(i));
  if (out.empty()) return terminal_safe(key);
  if (os == label(os_family::other)) out = "Other OS";
  if (browser == label(browser_family::other)) return out + ", other browser or player";
  for (int i = 0; i < browser_family_count; ++i)
    if (label(static_cast<browser_family>(i)) == browser)
      return out + ", " + std::string(display_name(static_cast<browser_family>(i)));
  return terminal_safe(key);
}

std::string os_version_display_name(std::string_view key) {
  const auto space = key.find(' ');
  const std::string_view os = key.substr(0, space);
  const std::string_view v = space == std::string_view::npos ? "" : key.substr(space + 1);
  for (int i = 0; i < os_family_count; ++i)
    if (label(static_cast<os_family>(i)) == os) {
      const std::string name(display_name(static_cast<os_family>(i)));
      return v == "0" || v.empty() ? name + " (version unknown)" : name + " " + std::string(v);
    }
  return terminal_safe(key);
}

std::optional<std::uint32_t> parse_period(std::string_view text) {
  if (text.size() < 2 || text.size() > 7) return std::nullopt;
  const char unit = text.back();
  std::uint32_t per = 0;
  if (unit == 'h' || unit == 'H')
    per = 1;
  else if (unit == 'd' || unit == 'D')
    per = 24;
  else
    return std::nullopt;
  std::uint32_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint32_t>(c - '0');  // at most 6 digits: no overflow
  }
  const std::uint64_t hours = std::uint64_t{n} * per;
  if (hours < 1 || hours > history_retention_hours) return std::nullopt;
  return static_cast<std::uint32_t>(hours);
}

std::int64_t local_utc_offset(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm local{};
  localtime_r(&t, &local);
  return local.tm_gmtoff;
}

std::string human_bytes(std::uint64_t n) {
  static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return fmt::format("{} B", n);
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  if (v >= 1023.5 && u + 1 < std::size(units)) {  // would print as "1024 KiB"
    v /= 1024;
    ++u;
  }
  if (v < 9.95) return fmt::format("{:.1f} {}", v, units[u]);
  return fmt::format("{:.0f} {}", v, units[u]);
}

std::string iso_utc(std::int64_t unix_seconds) {
  const civil c = civil_time(unix_seconds);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour,
                     c.minute, ((unix_seconds % 60) + 60) % 60);
}

std::string render_report(const usage_summary& s, const report_options& opts) {
  return opts.json ? render_report_json(s, opts) : render_text(s, opts);
}

}  // namespace storecache::usage
