// CloudFront policy JSON: see json_policy.hpp.
#include "access/json_policy.hpp"

#include <vector>

#include "access/signed_url.hpp"

namespace storecache::access {

namespace {

constexpr int max_depth = 8;  // a policy is 5 deep: root, list, statement, condition, date

struct json_value {
  enum class kind { null, boolean, number, string, array, object };
  kind k = kind::null;
  std::int64_t number = 0;
  std::string text;               // string
  std::vector<json_value> items;  // array elements, or object values
  std::vector<std::string> keys;  // object keys, parallel to items

  const json_value* member(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

class parser {
 public:
  explicit parser(std::string_view in) : in_(in) {}

  bool document(json_value& out) {
    if (!value(out, 0)) return false;
    skip_space();
    return pos_ == in_.size();
  }

 private:
  void skip_space() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool value(json_value& out, int depth) {
    if (depth > max_depth) return false;
    skip_space();
    if (pos_ >= in_.size()) return false;
    const char c = in_[pos_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out.k = json_value::kind::string;
      return string(out.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      out.k = json_value::kind::number;
      return number(out.number);
    }
    if (c == 't' || c == 'f') {
      out.k = json_value::kind::boolean;
      return literal(c == 't' ? "true" : "false");
    }
    out.k = json_value::kind::null;
    return literal("null");
  }

  bool object(json_value& out, int depth) {
    out.k = json_value::kind::object;
    ++pos_;  // '{'
    if (eat('}')) return true;
    do {
      skip_space();
      std::string key;
      if (pos_ >= in_.size() || in_[pos_] != '"' || !string(key)) return false;
      if (out.member(key) != nullptr) return false;  // duplicate key: ambiguous, refused
      if (!eat(':')) return false;
      json_value v;
      if (!value(v, depth + 1)) return false;
      out.keys.push_back(std::move(key));
      out.items.push_back(std::move(v));
    } while (eat(','));
    return eat('}');
  }

  bool array(json_value& out, int depth) {
    out.k = json_value::kind::array;
    ++pos_;  // '['
    if (eat(']')) return true;
    do {
      json_value v;
      if (!value(v, depth + 1)) return false;
      out.items.push_back(std::move(v));
    } while (eat(','));
    return eat(']');
  }

  bool number(std::int64_t& out) {
    bool negative = false;
    if (in_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    const std::size_t start = pos_;
    std::int64_t v = 0;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') {
      const int d = in_[pos_] - '0';
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v)) return false;
      ++pos_;
    }
    const std::size_t digits = pos_ - start;
    if (digits == 0 || (digits > 1 && in_[start] == '0')) return false;
    if (pos_ < in_.size() && (in_[pos_] == '.' || in_[pos_] == 'e' || in_[pos_] == 'E'))
      return false;  // only integers: every number in a policy is a time
    out = negative ? -v : v;
    return true;
  }

  bool hex4(unsigned& out) {
    if (in_.size() - pos_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = in_[pos_++];
      unsigned d = 0;
      if (c >= '0' && c <= '9')
        d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<unsigned>(c - 'A' + 10);
      else
        return false;
      out = out * 16 + d;
    }
    return true;
  }

  static void append_utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // '"'
    while (pos_ < in_.size()) {
      const char c = in_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= in_.size()) return false;
      const char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return false;  // lone low surrogate
          if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned low = 0;
            if (!literal("\\u") || !hex4(low) || low < 0xdc00 || low > 0xdfff) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          if (cp == 0) return false;  // no NUL inside a resource or an address
          append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

// {"AWS:EpochTime": N} with N >= 0.
std::optional<std::int64_t> epoch_time(const json_value& v) {
  if (v.k != json_value::kind::object || v.keys.size() != 1 || v.keys[0] != "AWS:EpochTime")
    return std::nullopt;
  const json_value& n = v.items[0];
  if (n.k != json_value::kind::number || n.number < 0) return std::nullopt;
  return n.number;
}

}  // namespace

std::optional<cloudfront_policy> parse_cloudfront_policy(std::string_view json) {
  if (json.size() > max_policy_bytes) return std::nullopt;
  json_value root;
  if (!parser(json).document(root)) return std::nullopt;
  if (root.k != json_value::kind::object || root.keys.size() != 1 || root.keys[0] != "Statement")
    return std::nullopt;
  const json_value& list = root.items[0];
  if (list.k != json_value::kind::array || list.items.size() != 1) return std::nullopt;
  const json_value& st = list.items[0];
  if (st.k != json_value::kind::object) return std::nullopt;

  cloudfront_policy p;
  const json_value* resource = nullptr;
  const json_value* condition = nullptr;
  for (std::size_t i = 0; i < st.keys.size(); ++i) {
    if (st.keys[i] == "Resource")
      resource = &st.items[i];
    else if (st.keys[i] == "Condition")
      condition = &st.items[i];
    else
      return std::nullopt;
  }
  if (resource == nullptr || resource->k != json_value::kind::string || resource->text.empty())
    return std::nullopt;
  p.resource = resource->text;
  if (condition == nullptr || condition->k != json_value::kind::object) return std::nullopt;

  bool have_less = false;
  for (std::size_t i = 0; i < condition->keys.size(); ++i) {
    const std::string& key = condition->keys[i];
    const json_value& v = condition->items[i];
    if (key == "DateLessThan") {
      const auto t = epoch_time(v);
      if (!t) return std::nullopt;
      p.date_less_than = *t;
      have_less = true;
    } else if (key == "DateGreaterThan") {
      p.date_greater_than = epoch_time(v);
      if (!p.date_greater_than) return std::nullopt;
    } else if (key == "IpAddress") {
      if (v.k != json_value::kind::object || v.keys.size() != 1 || v.keys[0] != "AWS:SourceIp" ||
          v.items[0].k != json_value::kind::string)
        return std::nullopt;
      p.source_ip = v.items[0].text;
    } else {
      return std::nullopt;
    }
  }
  if (!have_less) return std::nullopt;
  return p;
}

bool wildcard_match(std::string_view pattern, std::string_view text) {
  // Greedy with one backtrack point: O(pattern * text) at worst, and the pattern is signed.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

}  // namespace storecache::access
