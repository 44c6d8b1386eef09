#include "config/site_signed_reader.hpp"

#include <algorithm>

namespace storecache::config {
namespace {

bool is_param_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

class signed_reader {
 public:
  signed_reader(toml_reader& r, std::span<const table_schema> schema) : r_(r), schema_(schema) {}
  void read(const toml::table& t, const std::string& key, site_signed_urls& out);

 private:
  void read_keys(const toml::node& n, const std::string& key, site_signed_urls& out);
  void read_paths(const toml::node& n, const std::string& key, std::vector<std::string>& out);

  toml_reader& r_;
  std::span<const table_schema> schema_;
};

void signed_reader::read(const toml::table& t, const std::string& key, site_signed_urls& out) {
  r_.check_keys(t, key, site_signed_keys, schema_);
  const toml::node* scheme = t.get("scheme");
  if (scheme != nullptr) {
    if (auto v = r_.string_value(*scheme, join(key, "scheme"))) {
      static constexpr std::array<signed_url_scheme, 5> all{
          signed_url_scheme::upstream, signed_url_scheme::none, signed_url_scheme::cloudfront,
          signed_url_scheme::secure_link, signed_url_scheme::hmac};
      auto it = std::find_if(all.begin(), all.end(), [&](auto s) { return to_string(s) == *v; });
      if (it == all.end())
        r_.error(*scheme, join(key, "scheme"),
                 "must be \"upstream\", \"none\", \"cloudfront\", \"secure_link\" or \"hmac\"");
      else
        out.scheme = *it;
    }
  }
  if (const toml::node* n = t.get("clock_skew"))
    if (auto v =
            r_.seconds(*n, join(key, "clock_skew"), zero_duration::allowed, std::chrono::hours(1)))
      out.clock_skew = *v;
  if (const toml::node* n = t.get("cookies"))
    if (auto v = r_.boolean(*n, join(key, "cookies"))) out.cookies = *v;
  if (const toml::node* n = t.get("paths")) read_paths(*n, join(key, "paths"), out.paths);
  for (auto [name, member] : {std::pair{"md5_param", &site_signed_urls::md5_param},
                              std::pair{"expires_param", &site_signed_urls::expires_param}}) {
    if (const toml::node* n = t.get(name)) {
      auto v = r_.string_value(*n, join(key, name));
      if (v && !is_param_name(*v))
        r_.error(*n, join(key, name), "must be a query parameter name (letters, digits, -_.)");
      else if (v)
        out.*member = *v;
    }
  }
  if (const toml::node* n = t.get("secure_link_md5"))
    if (auto v = r_.string_value(*n, join(key, "secure_link_md5"))) {
      if (v->empty() || v->size() > 1024)
        r_.error(*n, join(key, "secure_link_md5"), "must be 1 to 1024 characters");
      else
        out.secure_link_md5 = *v;
    }
  if (const toml::node* n = t.get("secret_file"))
    if (auto v = r_.readable_file(*n, join(key, "secret_file"))) out.secret_file = *v;
  if (const toml::node* n = t.get("key")) read_keys(*n, join(key, "key"), out);

  // What each scheme needs, and keys that would be silently ignored.
  const auto at = scheme != nullptr ? where(*scheme) : where(t);
  switch (out.scheme) {
    case signed_url_scheme::cloudfront:
    case signed_url_scheme::hmac:
      if (out.keys.empty() && t.get("key") == nullptr)
        r_.error(at, join(key, "scheme"),
                 std::string("\"") + std::string(to_string(out.scheme)) +
                     "\" needs at least one [[site.signed_urls.key]] (id and " +
                     (out.scheme == signed_url_scheme::cloudfront ? "public_key" : "secret_file") +
                     ")");
      if (t.get("secret_file") != nullptr)
        r_.error(*t.get("secret_file"), join(key, "secret_file"),
                 "is for scheme = \"secure_link\"; this scheme's secrets are per key");
      break;
    case signed_url_scheme::secure_link:
      if (t.get("secret_file") == nullptr &&
          out.secure_link_md5.find("$secret") != std::string::npos)
        r_.error(at, join(key, "secret_file"),
                 "is required by scheme = \"secure_link\" (secure_link_md5 uses $secret)");
      if (t.get("key") != nullptr)
        r_.error(*t.get("key"), join(key, "key"),
                 "is for \"cloudfront\" and \"hmac\"; secure_link uses secret_file");
      break;
    case signed_url_scheme::upstream:
    case signed_url_scheme::none:
      for (std::string_view k : {"key", "secret_file", "secure_link_md5", "paths"})
        if (const toml::node* n = t.get(k))
          r_.error(*n, join(key, k),
                   std::string("has no effect with scheme = \"") +
                       std::string(to_string(out.scheme)) +
                       "\"; it is for the schemes storecache verifies itself");
      break;
  }
}

void signed_reader::read_paths(const toml::node& n, const std::string& key,
                               std::vector<std::string>& out) {
  if (!n.is_array() || n.as_array()->empty()) {
    r_.type_error(n, key, "a non-empty array of path patterns, e.g. [\"/video/*\"]");
    return;
  }
  out.clear();
  const toml::array& arr = *n.as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    auto p = r_.string_value(arr[i], indexed(key, i));
    if (!p) continue;
    if (p->empty() || (p->front() != '/' && p->front() != '*') || p->find('?') != std::string::npos)
      r_.error(arr[i], indexed(key, i),
               "must start with '/' or '*' and match the path only, as \"/video/*\"");
    else
      out.push_back(std::move(*p));
  }
}

void signed_reader::read_keys(const toml::node& n, const std::string& key, site_signed_urls& out) {
  if (!n.is_array_of_tables()) {
    r_.type_error(n, key, "an array of tables ([[site.signed_urls.key]])");
    return;
  }
  const bool cloudfront = out.scheme == signed_url_scheme::cloudfront;
  const std::string_view file_key = cloudfront ? "public_key" : "secret_file";
  const toml::array& arr = *n.as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const toml::table& kt = *arr[i].as_table();
    const std::string k = indexed(key, i);
    r_.check_keys(kt, k, signed_key_keys, schema_);
    signed_url_key entry;
    const toml::node* id = kt.get("id");
    if (id == nullptr) {
      r_.error(kt, join(k, "id"),
               cloudfront ? "is required (the Key-Pair-Id, e.g. \"K2JCJMDEHXQW5F\")"
                          : "is required (the sc_kid value, e.g. \"2026a\")");
      continue;
    }
    auto idv = r_.string_value(*id, join(k, "id"));
    if (!idv) continue;
    if (!is_param_name(*idv)) {
      r_.error(*id, join(k, "id"), "must be 1 to 64 letters, digits, '-', '_' or '.'");
      continue;
    }
    if (std::any_of(out.keys.begin(), out.keys.end(),
                    [&](const auto& e) { return e.id == *idv; })) {
      r_.error(*id, join(k, "id"), "'" + *idv + "' is used by another key of this site");
      continue;
    }
    for (std::string_view other : {"public_key", "secret_file"})
      if (other != file_key && kt.get(other) != nullptr)
        r_.error(*kt.get(other), join(k, other),
                 std::string("is not used by scheme = \"") + std::string(to_string(out.scheme)) +
                     "\"; write " + std::string(file_key));
    const toml::node* file = kt.get(file_key);
    if (file == nullptr) {
      r_.error(kt, join(k, file_key), "is required");
      continue;
    }
    auto path = r_.readable_file(*file, join(k, file_key));
    if (!path) continue;
    entry.id = std::move(*idv);
    entry.file = std::move(*path);
    out.keys.push_back(std::move(entry));
  }
}

}  // namespace

void read_site_signed_urls(toml_reader& reader, const toml::table& site_table,
                           const std::string& prefix, std::span<const table_schema> schema,
                           site_signed_urls& out) {
  const toml::node* n = site_table.get("signed_urls");
  if (n == nullptr) return;
  std::string key = join(prefix, "signed_urls");
  if (!n->is_table()) {
    reader.type_error(*n, key, "a table ([site.signed_urls])");
    return;
  }
  signed_reader(reader, schema).read(*n->as_table(), key, out);
}

}  // namespace storecache::config
