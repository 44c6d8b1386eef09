// nginx secure_link: see secure_link.hpp and SIGNED_URLS.md.
//
// As nginx: the hash is checked first, then the expiry (a link is good up to and including
// its expires second); expires must be a positive decimal. Unlike nginx, a path nginx would
// have to normalise (dot segments, "//", encoded slashes) is refused rather than resolved,
// since legitimate signed links never carry one.
#include "access/secure_link.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <vector>

#include "access/base64.hpp"
#include "access/signed_url_util.hpp"

namespace storecache::access {

namespace {

enum class variable { literal, expires, uri, remote_addr, host, scheme, arg };

struct part {
  variable kind = variable::literal;
  std::string text;  // the literal, or the argument's name for arg
};

bool name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool valid_parameter_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (const char c : n)
    if (!name_char(c) && c != '-' && c != '.') return false;
  return true;
}

std::vector<part> compile(std::string_view t) {
  std::vector<part> parts;
  std::size_t i = 0;
  while (i < t.size()) {
    if (t[i] != '$') {
      const std::size_t end = std::min(t.find('$', i), t.size());
      parts.push_back({variable::literal, std::string(t.substr(i, end - i))});
      i = end;
      continue;
    }
    std::string_view name;
    if (i + 1 < t.size() && t[i + 1] == '{') {
      const std::size_t close = t.find('}', i + 2);
      if (close == std::string_view::npos)
        throw std::runtime_error("secure_link: md5 template has a '${' without '}'");
      name = t.substr(i + 2, close - i - 2);
      i = close + 1;
    } else {
      std::size_t end = i + 1;
      while (end < t.size() && name_char(t[end]))
        ++end;
      name = t.substr(i + 1, end - i - 1);
      i = end;
    }
    if (name == "secure_link_expires")
      parts.push_back({variable::expires, {}});
    else if (name == "uri")
      parts.push_back({variable::uri, {}});
    else if (name == "remote_addr")
      parts.push_back({variable::remote_addr, {}});
    else if (name == "host")
      parts.push_back({variable::host, {}});
    else if (name == "scheme")
      parts.push_back({variable::scheme, {}});
    else if (name.starts_with("arg_") && name.size() > 4)
      parts.push_back({variable::arg, std::string(name.substr(4))});
    else  // the name only: the template around it holds the secret
      throw std::runtime_error("secure_link: md5 template uses unsupported variable $" +
                               std::string(name.substr(0, 64)));
  }
  return parts;
}

class secure_link_verifier final : public url_verifier {
 public:
  explicit secure_link_verifier(const secure_link_settings& s)
      : hash_name_(s.hash_parameter),
        expires_name_(s.expires_parameter),
        skew_(s.clock_skew.count()),
        parts_(compile(s.md5_template)),
        md5_(detail::fetch_digest("MD5")) {
    if (!valid_parameter_name(hash_name_))
      throw std::runtime_error("secure_link: hash parameter name is empty or not [A-Za-z0-9_.-]");
    if (!expires_name_.empty() && !valid_parameter_name(expires_name_))
      throw std::runtime_error("secure_link: expires parameter name is not [A-Za-z0-9_.-]");
    if (hash_name_ == expires_name_)
      throw std::runtime_error("secure_link: hash and expires parameters have the same name");
    if (skew_ < 0) throw std::runtime_error("secure_link: clock_skew is negative");
    bool has_uri = false;
    bool has_expires = false;
    for (const auto& p : parts_) {
      has_uri = has_uri || p.kind == variable::uri;
      has_expires = has_expires || p.kind == variable::expires;
    }
    if (!has_uri)
      throw std::runtime_error("secure_link: md5 template lacks $uri; a link would open any path");
    if (!expires_name_.empty() && !has_expires)
      throw std::runtime_error(
          "secure_link: md5 template lacks $secure_link_expires; anyone could extend a link");
    names_.push_back(hash_name_);
    if (!expires_name_.empty()) names_.push_back(expires_name_);
    lookup_ = names_;
    for (const auto& p : parts_) {
      if (p.kind != variable::arg) continue;
      bool known = false;
      for (const auto n : lookup_)
        known = known || n == p.text;
      if (!known) lookup_.push_back(p.text);
    }
  }

  secure_link_verifier(const secure_link_verifier&) = delete;  // names_ views its members
  secure_link_verifier& operator=(const secure_link_verifier&) = delete;

  std::span<const std::string_view> parameters() const override { return names_; }

  signature_result verify(const signed_request& r) const override {
    std::vector<std::optional<std::string_view>> v(lookup_.size());
    if (detail::find_pairs(r.query, '&', lookup_, v) != detail::lookup_status::ok)
      return signature_result::malformed;
    if (!v[0]) return signature_result::missing;
    std::string_view expires_text;
    std::int64_t expires = 0;
    if (!expires_name_.empty()) {
      if (!v[1]) return signature_result::malformed;
      const auto e = detail::parse_decimal(*v[1]);
      if (!e || *e <= 0) return signature_result::malformed;
      expires_text = *v[1];
      expires = *e;
    }
    // nginx takes at most 24 characters and needs 16 bytes.
    const auto hash =
        v[0]->size() <= 24 ? base64_decode(*v[0], base64_alphabet::url, 16) : std::nullopt;
    if (!hash || hash->size() != 16) return signature_result::malformed;
    if (!detail::is_plain_path(r.path)) return signature_result::malformed;
    const auto uri = detail::percent_decode(r.path);
    if (!uri) return signature_result::malformed;

    std::string input;
    input.reserve(256 + r.path.size() + r.query.size());
    for (const auto& p : parts_) {
      switch (p.kind) {
        case variable::literal:
          input += p.text;
          break;
        case variable::expires:
          input += expires_text;
          break;
        case variable::uri:
          input += *uri;
          break;
        case variable::remote_addr:
          input += r.client_ip;
          break;
        case variable::host:
          input += r.host;
          break;
        case variable::scheme:
          input += r.scheme;
          break;
        case variable::arg:
          for (std::size_t i = 0; i < lookup_.size(); ++i)
            if (lookup_[i] == p.text && v[i]) input += *v[i];
          break;
      }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    const bool hashed =
        EVP_Digest(input.data(), input.size(), digest, &digest_len, md5_.get(), nullptr) == 1;
    ERR_clear_error();
    if (!hashed || digest_len != 16) return signature_result::bad_signature;
    if (!detail::equal_ct(*hash, std::string_view(reinterpret_cast<char*>(digest), digest_len)))
      return signature_result::bad_signature;
    if (!expires_name_.empty() && detail::saturating_add(expires, skew_) < r.now)
      return signature_result::expired;
    return signature_result::ok;
  }

 private:
  std::string hash_name_;
  std::string expires_name_;
  std::int64_t skew_;
  std::vector<part> parts_;
  detail::md_ptr md5_;
  std::vector<std::string_view> names_;   // the signature parameters (views of the members)
  std::vector<std::string_view> lookup_;  // those, then the $arg_ names (views of parts_)
};

}  // namespace

std::unique_ptr<url_verifier> make_secure_link_verifier(const secure_link_settings& settings) {
  return std::make_unique<secure_link_verifier>(settings);
}

}  // namespace storecache::access
