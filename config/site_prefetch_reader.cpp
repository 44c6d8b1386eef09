#include "config/site_prefetch_reader.hpp"

#include <algorithm>
#include <limits>

#include "config/values.hpp"

namespace storecache::config {
namespace {

// A path on the site: origin-form, printable, no spaces, no fragment.
std::string check_site_path(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.starts_with("//"))
    return "must be a path on the site, starting with one '/', e.g. "
           "\"/courses/safety/imsmanifest.xml\"";
  if (p.size() > 2048) return "is longer than 2048 characters";
  for (char c : p)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '#')
      return "may hold no spaces, control characters, '#' or non-ASCII bytes (percent-encode them)";
  return {};
}

class prefetch_reader {
 public:
  prefetch_reader(toml_reader& r, std::span<const table_schema> schema) : r_(r), schema_(schema) {}
  void read_source(const toml::table& t, const std::string& key, prefetch_source& out);

 private:
  void read_windows(const toml::node& n, const std::string& key, std::vector<time_window>& out);
  toml_reader& r_;
  std::span<const table_schema> schema_;
};

void prefetch_reader::read_source(const toml::table& t, const std::string& key,
                                  prefetch_source& out) {
  r_.check_keys(t, key, site_prefetch_keys, schema_);
  if (const toml::node* n = t.get("url")) {
    if (auto v = r_.string_value(*n, join(key, "url"))) {
      if (auto why = check_site_path(*v); !why.empty())
        r_.error(*n, join(key, "url"), why);
      else
        out.path = *v;
    }
  } else {
    r_.error(t, join(key, "url"),
             "is required: the listing's path on the site, e.g. url = "
             "\"/courses/safety/imsmanifest.xml\"");
  }
  out.name = out.path;
  if (const toml::node* n = t.get("name")) {
    if (auto v = r_.string_value(*n, join(key, "name"))) {
      if (v->empty() || v->size() > 128)
        r_.error(*n, join(key, "name"), "must be 1 to 128 characters");
      else
        out.name = *v;
    }
  }
  if (const toml::node* n = t.get("kind")) {
    if (auto v = r_.string_value(*n, join(key, "kind"))) {
      static constexpr std::array all{prefetch_kind::detect, prefetch_kind::url_list,
                                      prefetch_kind::ims_manifest, prefetch_kind::hls,
                                      prefetch_kind::cmi5};
      auto it = std::find_if(all.begin(), all.end(), [&](auto k) { return to_string(k) == *v; });
      if (it == all.end())
        r_.error(*n, join(key, "kind"),
                 "must be \"detect\", \"url_list\", \"ims_manifest\", \"hls\" or \"cmi5\"");
      else
        out.kind = *it;
    }
  }
  if (const toml::node* n = t.get("windows")) read_windows(*n, join(key, "windows"), out.windows);
  if (const toml::node* n = t.get("interval"))
    if (auto v = r_.seconds(*n, join(key, "interval"), zero_duration::refused,
                            std::chrono::hours(24 * 7))) {
      if (*v < std::chrono::seconds(10))
        r_.error(*n, join(key, "interval"), "must be at least 10s");
      else
        out.interval = *v;
    }
  if (const toml::node* n = t.get("pin"))
    if (auto v = r_.boolean(*n, join(key, "pin"))) out.pin = *v;
  if (const toml::node* n = t.get("hls_variants")) {
    if (auto v = r_.string_value(*n, join(key, "hls_variants"))) {
      if (*v == "all" || *v == "lowest_and_highest")
        out.hls_lowest_and_highest = *v == "lowest_and_highest";
      else
        r_.error(*n, join(key, "hls_variants"), "must be \"all\" or \"lowest_and_highest\"");
    }
  }
}

void prefetch_reader::read_windows(const toml::node& n, const std::string& key,
                                   std::vector<time_window>& out) {
  if (!n.is_array()) {
    r_.type_error(n, key, "an array of windows in local time, e.g. [\"22:00-06:00\"]");
    return;
  }
  const toml::array& arr = *n.as_array();
  if (arr.empty()) r_.error(n, key, "is empty: leave it out to mean always");
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string item_key = indexed(key, i);
    auto text = r_.string_value(arr[i], item_key);
    if (!text) continue;
    std::string why;
    if (auto w = parse_time_window(*text, why))
      out.push_back(*w);
    else
      r_.error(arr[i], item_key, why);
  }
}

}  // namespace

void read_prefetch(toml_reader& reader, const toml::table& root,
                   std::span<const table_schema> schema, std::uint64_t cache_max_size,
                   prefetch_settings& out) {
  // Unwritten, the ceiling is half the cache: pinned content never crowds out what devices
  // bring in by day.
  out.max_pinned = cache_max_size / 2;
  const toml::table* t = reader.table(root, "prefetch");
  if (t == nullptr) return;
  reader.check_keys(*t, "prefetch", prefetch_keys, schema);
  if (const toml::node* n = t->get("connections"))
    if (auto v = reader.integer(*n, "prefetch.connections", 1, 64))
      out.connections = static_cast<unsigned>(*v);
  if (const toml::node* n = t->get("max_listing_size"))
    if (auto v = reader.size(*n, "prefetch.max_listing_size", 1024, 1ull << 30))
      out.max_listing_size = *v;
  if (const toml::node* n = t->get("max_entries"))
    if (auto v = reader.integer(*n, "prefetch.max_entries", 1, 10'000'000))
      out.max_entries = static_cast<std::uint64_t>(*v);
  if (const toml::node* n = t->get("max_depth"))
    if (auto v = reader.integer(*n, "prefetch.max_depth", 0, 8))
      out.max_depth = static_cast<unsigned>(*v);
  if (const toml::node* n = t->get("listing_timeout"))
    if (auto v = reader.seconds(*n, "prefetch.listing_timeout", zero_duration::refused,
                                std::chrono::hours(1)))
      out.listing_timeout = *v;
  if (const toml::node* n = t->get("max_pinned"))
    if (auto v =
            reader.size(*n, "prefetch.max_pinned", 0, std::numeric_limits<std::uint64_t>::max())) {
      if (*v >= cache_max_size)
        reader.error(*n, "prefetch.max_pinned",
                     format_size(*v) + " is not below cache.max_size (" +
                         format_size(cache_max_size) +
                         "): pinned objects would leave no room for anything else");
      else
        out.max_pinned = *v;
    }
}

void read_site_prefetch(toml_reader& reader, const toml::table& site_table,
                        const std::string& prefix, std::span<const table_schema> schema,
                        std::vector<prefetch_source>& out) {
  const toml::node* n = site_table.get("prefetch");
  if (n == nullptr) return;
  std::string key = join(prefix, "prefetch");
  if (!n->is_array_of_tables()) {
    reader.type_error(*n, key, "an array of tables ([[site.prefetch]], one per listing)");
    return;
  }
  const toml::array& arr = *n->as_array();
  prefetch_reader r(reader, schema);
  for (std::size_t i = 0; i < arr.size(); ++i) {
    prefetch_source src;
    std::string item_key = indexed(key, i);
    r.read_source(*arr[i].as_table(), item_key, src);
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const prefetch_source& o) { return o.name == src.name; });
    if (same != out.end() && !src.name.empty())
      reader.error(arr[i], join(item_key, "name"),
                   "'" + src.name + "' names another [[site.prefetch]] of this site too; " +
                       "give each a name of its own");
    out.push_back(std::move(src));
  }
}

}  // namespace storecache::config
