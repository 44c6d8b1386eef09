#include "prefetch/readiness.hpp"

#include "admin/exposition.hpp"

namespace storecache::prefetch {

std::string_view to_string(listing_problem p) {
  switch (p) {
    case listing_problem::none:
      return "none";
    case listing_problem::unreachable:
      return "unreachable";
    case listing_problem::status:
      return "status";
    case listing_problem::too_large:
      return "too_large";
    case listing_problem::malformed:
      return "malformed";
  }
  return "?";
}

namespace {

double seconds_since_epoch(clock_time t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// One sample per source of a family whose value `value` reads from a readiness.
template <typename F>
void per_source(admin::exposition& out, const std::vector<readiness>& sources,
                std::string_view name, std::string_view type, std::string_view help, F value) {
  if (sources.empty()) return;
  out.family(name, type, help);
  for (const auto& s : sources)
    out.sample("{}{{site=\"{}\",source=\"{}\"}} {}\n", name, admin::escape_label(s.site),
               admin::escape_label(s.source), value(s));
}

}  // namespace

std::string render_metrics(const std::vector<readiness>& sources, std::uint64_t pin_ceiling) {
  std::string text;
  admin::exposition out(text);
  if (!sources.empty()) {
    out.family("storecache_prefetch_objects", "gauge",
               "Objects a prefetch source lists, by state at its last check: fresh in the cache, "
               "missing (not yet fetched, or stale), failed.");
    for (const auto& s : sources) {
      const auto site = admin::escape_label(s.site);
      const auto source = admin::escape_label(s.source);
      out.sample("storecache_prefetch_objects{{site=\"{}\",source=\"{}\",state=\"fresh\"}} {}\n",
                 site, source, s.fresh);
      out.sample("storecache_prefetch_objects{{site=\"{}\",source=\"{}\",state=\"missing\"}} {}\n",
                 site, source, s.missing());
      out.sample("storecache_prefetch_objects{{site=\"{}\",source=\"{}\",state=\"failed\"}} {}\n",
                 site, source, s.failed);
    }
  }
  per_source(out, sources, "storecache_prefetch_listed_objects", "gauge",
             "Distinct objects the source's listings name (after the entry and depth caps).",
             [](const readiness& s) { return s.listed; });
  per_source(out, sources, "storecache_prefetch_ready_ratio", "gauge",
             "Fresh objects / listed objects (1: the whole source is in the cache; 0 before its "
             "listing was read).",
             [](const readiness& s) {
               return s.listed == 0 ? 0.0
                                    : static_cast<double>(s.fresh) / static_cast<double>(s.listed);
             });
  per_source(out, sources, "storecache_prefetch_bytes", "gauge",
             "Body bytes of the source's fresh objects.",
             [](const readiness& s) { return s.bytes; });
  per_source(out, sources, "storecache_prefetch_pinned_objects", "gauge",
             "Objects of a pin = true source that eviction keeps (stored copies, within "
             "[prefetch] max_pinned).",
             [](const readiness& s) { return s.pinned_objects; });
  per_source(out, sources, "storecache_prefetch_pinned_bytes", "gauge",
             "Body bytes of the source's pinned objects.",
             [](const readiness& s) { return s.pinned_bytes; });
  per_source(out, sources, "storecache_prefetch_unpinned_objects", "gauge",
             "Objects of a pin = true source past [prefetch] max_pinned: cached, but evictable.",
             [](const readiness& s) { return s.unpinned_objects; });
  per_source(out, sources, "storecache_prefetch_unpinned_bytes", "gauge",
             "Body bytes of the source's objects past [prefetch] max_pinned.",
             [](const readiness& s) { return s.unpinned_bytes; });
  if (!sources.empty()) {
    out.family("storecache_prefetch_pinned_ceiling_bytes", "gauge",
               "[prefetch] max_pinned: the body bytes all pin = true sources together may keep "
               "from eviction.");
    out.sample("storecache_prefetch_pinned_ceiling_bytes {}\n", pin_ceiling);
  }
  per_source(out, sources, "storecache_prefetch_rejected_references", "gauge",
             "References in the source's listings that were not fetched: another host, outside "
             "the site, or not valid.",
             [](const readiness& s) { return s.rejected; });
  per_source(out, sources, "storecache_prefetch_truncated", "gauge",
             "1 when [prefetch] max_entries or max_depth cut the source's listing short.",
             [](const readiness& s) { return s.truncated ? 1 : 0; });
  per_source(out, sources, "storecache_prefetch_listing_ok", "gauge",
             "1 when the source's listing was last read (200 or 304) and parsed; 0 otherwise "
             "(the log says why, once per cause).",
             [](const readiness& s) { return s.listing == listing_problem::none ? 1 : 0; });
  per_source(out, sources, "storecache_prefetch_running", "gauge",
             "1 while the source runs (reads its listing, checks and fetches objects).",
             [](const readiness& s) { return s.running ? 1 : 0; });
  per_source(out, sources, "storecache_prefetch_last_run_end_timestamp_seconds", "gauge",
             "When the source's last run ended (Unix time; 0: none yet).", [](const readiness& s) {
               return s.last_end ? seconds_since_epoch(*s.last_end) : 0.0;
             });
  per_source(
      out, sources, "storecache_prefetch_next_run_timestamp_seconds", "gauge",
      "When the source runs next: its interval, or the opening of its next window (Unix "
      "time; 0 while it runs).",
      [](const readiness& s) { return s.next_run ? seconds_since_epoch(*s.next_run) : 0.0; });
  per_source(out, sources, "storecache_prefetch_runs_total", "counter",
             "Runs of the source since start (a run stopped by its window's end counts).",
             [](const readiness& s) { return s.runs; });
  per_source(out, sources, "storecache_prefetch_fetched_objects_total", "counter",
             "Objects prefetch fetched and stored for the source (new or changed upstream).",
             [](const readiness& s) { return s.fetched_objects; });
  per_source(out, sources, "storecache_prefetch_revalidated_objects_total", "counter",
             "Stale objects of the source the upstream confirmed unchanged (304).",
             [](const readiness& s) { return s.revalidated; });
  per_source(out, sources, "storecache_prefetch_upstream_bytes_total", "counter",
             "Body bytes prefetch read from the upstream for the source, listings included.",
             [](const readiness& s) { return s.fetched_bytes; });
  per_source(out, sources, "storecache_prefetch_listing_not_modified_total", "counter",
             "Listing reads the upstream answered 304 (unchanged).",
             [](const readiness& s) { return s.listing_not_modified; });
  return text;
}

}  // namespace storecache::prefetch
