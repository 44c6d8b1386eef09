#include "cache/cache_control.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <utility>

namespace storecache::cache {

namespace {

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
  return is_alpha(c) || is_digit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Unquotes an RFC 9110 quoted-string (backslash escapes) or returns a token as is. A quoted
// string that is not closed yields nullopt: the argument is invalid.
std::optional<std::string> argument_text(std::string_view v) {
  if (v.empty() || v.front() != '"') return std::string(v);
  std::string out;
  for (std::size_t i = 1; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\') {
      if (++i == v.size()) return std::nullopt;
      out.push_back(v[i]);
    } else if (c == '"') {
      if (i + 1 != v.size()) return std::nullopt;  // trailing garbage after the quote
      return out;
    } else {
      out.push_back(c);
    }
  }
  return std::nullopt;
}

struct directive {
  std::string name;                // lower-case
  std::optional<std::string> arg;  // unquoted; nullopt when there was no "=" at all
  bool bad_arg = false;            // "=" present but the argument is malformed
};

std::vector<directive> split_directives(std::string_view value) {
  std::vector<directive> out;
  for (auto element : split_list(value)) {
    directive d;
    auto eq = element.find('=');
    d.name = to_lower(trim_ows(element.substr(0, eq)));
    if (d.name.empty()) continue;
    if (eq != std::string_view::npos) {
      auto raw = trim_ows(element.substr(eq + 1));
      d.arg = argument_text(raw);
      if (!d.arg || d.arg->empty()) {
        d.bad_arg = true;
        d.arg = std::string();
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

// Field names in a qualified no-cache / private argument: "a, B" -> {"a","b"}.
std::vector<std::string> field_names(std::string_view arg) {
  std::vector<std::string> out;
  for (auto name : split_list(arg))
    out.push_back(to_lower(name));
  return out;
}

// A freshness directive: absent stays absent; repeated with another value, or invalid,
// marks the response stale (§4.2.1).
void set_freshness(std::optional<std::chrono::seconds>& slot, const directive& d, bool& invalid) {
  auto v = d.arg && !d.bad_arg ? parse_delta_seconds(*d.arg) : std::nullopt;
  if (!v) {
    invalid = true;
    return;
  }
  if (slot && *slot != *v) invalid = true;
  if (!slot) slot = v;
}

// An optional-valued directive where an invalid argument is simply ignored.
void set_optional(std::optional<std::chrono::seconds>& slot, const directive& d) {
  if (slot || !d.arg || d.bad_arg) return;
  slot = parse_delta_seconds(*d.arg);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = lower(c);
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      char c = value[i];
      if (quoted && c == '\\') {
        ++i;  // skip the escaped character, whatever it is
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (quoted || c != ',') continue;
    }
    auto element = trim_ows(value.substr(start, i - start));
    if (!element.empty()) out.push_back(element);
    start = i + 1;
  }
  return out;
}

std::optional<std::string> combined_field(const header_list& headers, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& h : headers) {
    if (h.name != name) continue;
    if (!out) {
      out = h.value;
    } else {
      out->append(", ");
      out->append(h.value);
    }
  }
  return out;
}

std::optional<std::chrono::seconds> parse_delta_seconds(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    if (v < delta_seconds_max.count()) v = v * 10 + (c - '0');
  }
  return std::chrono::seconds(std::min<std::int64_t>(v, delta_seconds_max.count()));
}

std::optional<entity_tag> parse_entity_tag(std::string_view text) {
  text = trim_ows(text);
  entity_tag tag;
  if (text.starts_with("W/")) {
    tag.weak = true;
    text.remove_prefix(2);
  }
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
  for (char c : text.substr(1, text.size() - 2))
    if (c == '"' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return std::nullopt;
  tag.opaque = text;
  return tag;
}

bool strong_match(const entity_tag& a, const entity_tag& b) {
  return !a.weak && !b.weak && a.opaque == b.opaque;
}

bool weak_match(const entity_tag& a, const entity_tag& b) {
  return a.opaque == b.opaque;
}

// --- Cache-Control ------------------------------------------------------------------------------

response_directives parse_response_cache_control(std::string_view value) {
  response_directives r;
  for (const auto& d : split_directives(value)) {
    const auto& n = d.name;
    if (n == "max-age") {
      set_freshness(r.max_age, d, r.invalid_freshness);
    } else if (n == "s-maxage") {
      set_freshness(r.s_maxage, d, r.invalid_freshness);
    } else if (n == "stale-while-revalidate") {
      set_optional(r.stale_while_revalidate, d);
    } else if (n == "stale-if-error") {
      set_optional(r.stale_if_error, d);
    } else if (n == "no-cache") {
      // The qualified form only restricts the named fields; a malformed argument is treated
      // as the unqualified (more restrictive) form.
      if (d.arg && !d.bad_arg) {
        for (auto& f : field_names(*d.arg))
          r.no_cache_fields.push_back(std::move(f));
      } else {
        r.no_cache = true;
      }
    } else if (n == "private") {
      if (d.arg && !d.bad_arg) {
        for (auto& f : field_names(*d.arg))
          r.private_fields.push_back(std::move(f));
      } else {
        r.is_private = true;
      }
    } else if (n == "no-store") {
      r.no_store = true;
    } else if (n == "public") {
      r.is_public = true;
    } else if (n == "must-revalidate") {
      r.must_revalidate = true;
    } else if (n == "proxy-revalidate") {
      r.proxy_revalidate = true;
    } else if (n == "must-understand") {
      r.must_understand = true;
    } else if (n == "no-transform") {
      r.no_transform = true;
    } else if (n == "immutable") {
      r.immutable = true;
    }
  }
  return r;
}

request_directives parse_request_cache_control(std::string_view value) {
  request_directives r;
  for (const auto& d : split_directives(value)) {
    const auto& n = d.name;
    if (n == "max-age") {
      set_optional(r.max_age, d);
    } else if (n == "min-fresh") {
      set_optional(r.min_fresh, d);
    } else if (n == "max-stale") {
      if (!d.arg) {
        r.max_stale = true;
      } else if (!d.bad_arg) {
        if (auto v = parse_delta_seconds(*d.arg)) {
          // Two different limits: keep the smaller one (the more restrictive).
          r.max_stale_limit = r.max_stale_limit ? std::min(*r.max_stale_limit, *v) : *v;
          r.max_stale = true;
        }
      }
    } else if (n == "stale-if-error") {
      set_optional(r.stale_if_error, d);
    } else if (n == "no-cache") {
      r.no_cache = true;
    } else if (n == "no-store") {
      r.no_store = true;
    } else if (n == "only-if-cached") {
      r.only_if_cached = true;
    }
  }
  return r;
}

request_directives request_cache_control(const header_list& request_headers) {
  auto v = combined_field(request_headers, "cache-control");
  return v ? parse_request_cache_control(*v) : request_directives{};
}

// --- CDN-Cache-Control: RFC 8941 Dictionary ----------------------------------------------------

namespace {

// The parts of an RFC 8941 bare item the directives need; other types are parsed (to validate
// the field) but only their kind is kept.
struct sf_item {
  enum class kind { integer, decimal, string, token, bytes, boolean, inner_list } type;
  std::int64_t integer = 0;
  bool boolean = false;
};

// A strict RFC 8941 §4.2 parser over one dictionary; any violation fails the whole field.
class sf_parser {
 public:
  explicit sf_parser(std::string_view s) : s_(s) {}

  std::optional<std::vector<std::pair<std::string, sf_item>>> dictionary() {
    std::vector<std::pair<std::string, sf_item>> out;
    skip_sp();
    if (s_.empty()) return std::nullopt;  // an empty targeted field is ignored (RFC 9213)
    while (!s_.empty()) {
      auto k = key();
      if (!k) return std::nullopt;
      sf_item item{sf_item::kind::boolean, 0, true};
      if (peek('=')) {
        s_.remove_prefix(1);
        auto v = peek('(') ? inner_list() : bare_item();
        if (!v) return std::nullopt;
        item = *v;
      }
      if (!parameters()) return std::nullopt;
      // Duplicate keys: the last one wins (RFC 8941 §4.2.2).
      std::erase_if(out, [&](const auto& e) { return e.first == *k; });
      out.emplace_back(std::move(*k), item);
      skip_ows();
      if (s_.empty()) break;
      if (!peek(',')) return std::nullopt;
      s_.remove_prefix(1);
      skip_ows();
      if (s_.empty()) return std::nullopt;  // trailing comma
    }
    return out;
  }

 private:
  bool peek(char c) const { return !s_.empty() && s_.front() == c; }
  void skip_sp() {
    while (peek(' '))
      s_.remove_prefix(1);
  }
  void skip_ows() {
    while (peek(' ') || peek('\t'))
      s_.remove_prefix(1);
  }

  std::optional<std::string> key() {
    if (s_.empty() || !((s_[0] >= 'a' && s_[0] <= 'z') || s_[0] == '*')) return std::nullopt;
    std::size_t n = 1;
    while (n < s_.size()) {
      char c = s_[n];
      if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*'))
        break;
      ++n;
    }
    std::string k(s_.substr(0, n));
    s_.remove_prefix(n);
    return k;
  }

  bool parameters() {
    while (peek(';')) {
      s_.remove_prefix(1);
      skip_sp();
      if (!key()) return false;
      if (peek('=')) {
        s_.remove_prefix(1);
        if (!bare_item()) return false;
      }
    }
    return true;
  }

  std::optional<sf_item> inner_list() {
    s_.remove_prefix(1);  // '('
    while (true) {
      skip_sp();
      if (peek(')')) {
        s_.remove_prefix(1);
        return sf_item{sf_item::kind::inner_list};
      }
      if (!bare_item() || !parameters()) return std::nullopt;
      if (!peek(' ') && !peek(')')) return std::nullopt;
    }
  }

  std::optional<sf_item> bare_item() {
    if (s_.empty()) return std::nullopt;
    char c = s_.front();
    if (c == '-' || is_digit(c)) return number();
    if (c == '"') return string();
    if (c == ':') return bytes();
    if (c == '?') {
      if (s_.size() < 2 || (s_[1] != '0' && s_[1] != '1')) return std::nullopt;
      sf_item item{sf_item::kind::boolean, 0, s_[1] == '1'};
      s_.remove_prefix(2);
      return item;
    }
    if (is_alpha(c) || c == '*') {
      std::size_t n = 1;
      while (n < s_.size() && (is_tchar(s_[n]) || s_[n] == ':' || s_[n] == '/'))
        ++n;
      s_.remove_prefix(n);
      return sf_item{sf_item::kind::token};
    }
    return std::nullopt;
  }

  std::optional<sf_item> number() {
    bool negative = peek('-');
    if (negative) s_.remove_prefix(1);
    if (s_.empty() || !is_digit(s_.front())) return std::nullopt;
    std::size_t n = 0, dot = std::string_view::npos;
    std::int64_t v = 0;
    while (n < s_.size() && (is_digit(s_[n]) || (s_[n] == '.' && dot == std::string_view::npos))) {
      if (s_[n] == '.') {
        if (n > 12) return std::nullopt;
        dot = n;
      } else if (dot == std::string_view::npos) {
        v = v * 10 + (s_[n] - '0');
      }
      ++n;
      if (dot == std::string_view::npos && n > 15) return std::nullopt;  // integer: 15 digits
    }
    if (n == 0) return std::nullopt;
    if (dot != std::string_view::npos && (dot + 1 == n || n - dot - 1 > 3)) return std::nullopt;
    s_.remove_prefix(n);
    if (dot != std::string_view::npos) return sf_item{sf_item::kind::decimal};
    return sf_item{sf_item::kind::integer, negative ? -v : v};
  }

  std::optional<sf_item> string() {
    for (std::size_t i = 1; i < s_.size(); ++i) {
      char c = s_[i];
      if (c == '\\') {
        if (++i == s_.size() || (s_[i] != '"' && s_[i] != '\\')) return std::nullopt;
      } else if (c == '"') {
        s_.remove_prefix(i + 1);
        return sf_item{sf_item::kind::string};
      } else if (c < 0x20 || c > 0x7e) {
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::optional<sf_item> bytes() {
    for (std::size_t i = 1; i < s_.size(); ++i) {
      char c = s_[i];
      if (c == ':') {
        s_.remove_prefix(i + 1);
        return sf_item{sf_item::kind::bytes};
      }
      if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=')) return std::nullopt;
    }
    return std::nullopt;
  }

  std::string_view s_;
};

std::optional<std::chrono::seconds> sf_seconds(const sf_item& v) {
  if (v.type != sf_item::kind::integer || v.integer < 0) return std::nullopt;
  return std::chrono::seconds(std::min<std::int64_t>(v.integer, delta_seconds_max.count()));
}

}  // namespace

std::optional<response_directives> parse_cdn_cache_control(std::string_view value) {
  auto dict = sf_parser(value).dictionary();
  if (!dict) return std::nullopt;
  response_directives r;
  for (const auto& [name, v] : *dict) {
    const bool is_bool = v.type == sf_item::kind::boolean;
    const bool on = is_bool && v.boolean;
    if (name == "max-age") {
      r.max_age = sf_seconds(v);
    } else if (name == "s-maxage") {
      r.s_maxage = sf_seconds(v);
    } else if (name == "stale-while-revalidate") {
      r.stale_while_revalidate = sf_seconds(v);
    } else if (name == "stale-if-error") {
      r.stale_if_error = sf_seconds(v);
    } else if (name == "no-cache") {
      r.no_cache = on || !is_bool;  // a field list counts as the unqualified form
    } else if (name == "private") {
      r.is_private = on || !is_bool;
    } else if (name == "no-store") {
      r.no_store = on;
    } else if (name == "public") {
      r.is_public = on;
    } else if (name == "must-revalidate") {
      r.must_revalidate = on;
    } else if (name == "proxy-revalidate") {
      r.proxy_revalidate = on;
    } else if (name == "must-understand") {
      r.must_understand = on;
    } else if (name == "no-transform") {
      r.no_transform = on;
    } else if (name == "immutable") {
      r.immutable = on;
    }
  }
  return r;
}

effective_directives response_cache_control(const header_list& response_headers,
                                            bool use_targeted) {
  if (use_targeted) {
    if (auto cdn = combined_field(response_headers, "cdn-cache-control")) {
      if (auto parsed = parse_cdn_cache_control(*cdn)) return {std::move(*parsed), true};
    }
  }
  auto cc = combined_field(response_headers, "cache-control");
  return {cc ? parse_response_cache_control(*cc) : response_directives{}, false};
}

}  // namespace storecache::cache
