// Our HMAC-SHA256 signed URLs: see hmac_url.hpp and SIGNED_URLS.md.
//
// Order of checks: parameters (missing / malformed), key id (unknown_key), the HMAC (forged),
// then the scope (wrong_resource), the expiry (expired) and the address (wrong_ip).
#include "access/hmac_url.hpp"

#include <openssl/err.h>
#include <openssl/hmac.h>

#include <array>
#include <map>
#include <optional>
#include <stdexcept>

#include "access/base64.hpp"
#include "access/signed_url_util.hpp"

namespace storecache::access {

namespace {

enum { exp_i, kid_i, sig_i, ip_i, scope_i, name_count };
constexpr std::array<std::string_view, name_count> names = {"sc_exp", "sc_kid", "sc_sig", "sc_ip",
                                                            "sc_scope"};
constexpr std::size_t min_secret_bytes = 16;
constexpr std::size_t max_secret_bytes = 4096;

bool valid_key_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// No control bytes and no newline in anything that goes into the string to sign, so its
// lines cannot be shifted into one another.
bool printable(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f) return false;
  }
  return true;
}

class hmac_verifier final : public url_verifier {
 public:
  explicit hmac_verifier(const hmac_settings& s)
      : skew_(s.clock_skew.count()), sha256_(detail::fetch_digest("SHA256")) {
    if (s.keys.empty()) throw std::runtime_error("hmac: no keys configured");
    if (skew_ < 0) throw std::runtime_error("hmac: clock_skew is negative");
    for (const auto& k : s.keys) {
      if (!valid_key_id(k.id))
        throw std::runtime_error("hmac: key id '" + k.id.substr(0, 80) +
                                 "' is empty, longer than 64 or not [A-Za-z0-9._-]");
      if (secrets_.contains(k.id))
        throw std::runtime_error("hmac: key id '" + k.id + "' configured twice");
      std::string secret = detail::read_key_file(k.secret_file, max_secret_bytes);
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
        secret.pop_back();
      if (secret.size() < min_secret_bytes)
        throw std::runtime_error(k.secret_file + ": secret shorter than 16 bytes");
      secrets_.emplace(k.id, std::move(secret));
    }
  }

  std::span<const std::string_view> parameters() const override { return names; }

  signature_result verify(const signed_request& r) const override {
    std::array<std::optional<std::string_view>, name_count> v;
    if (detail::find_pairs(r.query, '&', names, v) != detail::lookup_status::ok)
      return signature_result::malformed;
    bool any = false;
    for (const auto& x : v)
      any = any || x.has_value();
    if (!any) return signature_result::missing;
    if (!v[exp_i] || !v[kid_i] || !v[sig_i]) return signature_result::malformed;
    const auto exp = detail::parse_decimal(*v[exp_i]);
    if (!exp) return signature_result::malformed;
    const auto sig = base64_decode(*v[sig_i], base64_alphabet::url, 32);
    if (!sig || sig->size() != 32) return signature_result::malformed;
    if (!printable(r.host) || !printable(r.path) || !printable(r.query) || r.path.empty())
      return signature_result::malformed;
    std::optional<detail::ip_address> bound_ip;
    if (v[ip_i]) {
      bound_ip = detail::parse_ip(*v[ip_i]);
      if (!bound_ip) return signature_result::malformed;
    }
    const bool prefix = v[scope_i].has_value();
    if (prefix) {
      const std::string_view scope = *v[scope_i];
      // A scope ends in '/', so "/course1/" never opens "/course10/"; the path may not leave it
      // through a segment the origin would resolve.
      if (scope.size() < 1 || scope.front() != '/' || scope.back() != '/' ||
          !detail::is_plain_path(scope) || !detail::is_plain_path(r.path))
        return signature_result::malformed;
    }
    const auto secret = secrets_.find(*v[kid_i]);
    if (secret == secrets_.end()) return signature_result::unknown_key;

    const std::string rest = prefix ? std::string() : detail::strip_query(r.query, names);
    hmac_fields f;
    f.kid = *v[kid_i];
    f.exp = *v[exp_i];
    f.host = r.host;
    f.ip = v[ip_i].value_or(std::string_view{});
    f.target = prefix ? *v[scope_i] : r.path;
    f.query = rest;
    f.prefix = prefix;
    const std::string message = hmac_string_to_sign(f);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const bool done =
        HMAC(sha256_.get(), secret->second.data(), static_cast<int>(secret->second.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
             &mac_len) != nullptr;
    ERR_clear_error();
    if (!done || !detail::equal_ct(*sig, std::string_view(reinterpret_cast<char*>(mac), mac_len)))
      return signature_result::bad_signature;

    if (prefix && !r.path.starts_with(*v[scope_i])) return signature_result::wrong_resource;
    if (r.now >= detail::saturating_add(*exp, skew_)) return signature_result::expired;
    if (bound_ip) {
      const auto client = detail::parse_ip(r.client_ip);
      if (!client || !(*client == *bound_ip)) return signature_result::wrong_ip;
    }
    return signature_result::ok;
  }

 private:
  std::int64_t skew_;
  detail::md_ptr sha256_;
  std::map<std::string, std::string, std::less<>> secrets_;
};

}  // namespace

std::string hmac_string_to_sign(const hmac_fields& f) {
  std::string s;
  s.reserve(64 + f.kid.size() + f.exp.size() + f.host.size() + f.ip.size() + f.target.size() +
            f.query.size());
  s.append("storecache-url-v1\n")
      .append(f.kid)
      .append("\n")
      .append(f.exp)
      .append("\n")
      .append(f.host)
      .append("\n")
      .append(f.ip)
      .append("\n")
      .append(f.prefix ? "prefix" : "path")
      .append("\n")
      .append(f.target)
      .append("\n")
      .append(f.prefix ? std::string_view{} : f.query);
  return s;
}

std::unique_ptr<url_verifier> make_hmac_verifier(const hmac_settings& settings) {
  return std::make_unique<hmac_verifier>(settings);
}

}  // namespace storecache::access
