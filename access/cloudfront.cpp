// CloudFront signed URLs and cookies: see cloudfront.hpp and SIGNED_URLS.md.
//
// Order of checks (each failure ends the walk): which parameters, from the query or else the
// cookies (missing / malformed); the key (unknown_key); the signature over the canned policy
// we rebuild or over the policy bytes as sent (forged); only then the policy's JSON
// (malformed), its resource (wrong_resource), times (expired, not_yet_valid) and address
// (wrong_ip). So the JSON parser only ever reads bytes the key holder signed.
#include "access/cloudfront.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <map>
#include <optional>
#include <stdexcept>

#include "access/base64.hpp"
#include "access/json_policy.hpp"
#include "access/signed_url_util.hpp"

namespace storecache::access {

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using detail::fetch_digest;
using detail::md_ptr;

// Names in this order in both lists: expires, policy, signature, key id, hash algorithm.
enum { expires_i, policy_i, signature_i, key_id_i, hash_i, name_count };
constexpr std::array<std::string_view, name_count> query_names = {"Expires", "Policy", "Signature",
                                                                  "Key-Pair-Id", "Hash-Algorithm"};
constexpr std::array<std::string_view, name_count> cookie_names = {
    "CloudFront-Expires", "CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id",
    "CloudFront-Hash-Algorithm"};

constexpr std::size_t max_key_file_bytes = 64 * 1024;
constexpr std::size_t max_signature_bytes = 1024;  // RSA 8192; ECDSA P-256 DER is ~72

bool valid_key_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

pkey_ptr load_public_key(const std::string& path) {
  const std::string pem = detail::read_key_file(path, max_key_file_bytes);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) throw std::runtime_error(path + ": out of memory");
  pkey_ptr key(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  if (!key) {
    if (pem.find("PRIVATE KEY-----") != std::string::npos)
      throw std::runtime_error(path +
                               ": holds a private key; give the public key "
                               "(openssl pkey -in key.pem -pubout)");
    throw std::runtime_error(path + ": not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    if (EVP_PKEY_get_bits(key.get()) < 2048)
      throw std::runtime_error(path + ": RSA key shorter than 2048 bits");
    return key;
  }
  if (EVP_PKEY_is_a(key.get(), "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &len) != 1 ||
        std::string_view(group, len) != "prime256v1") {
      ERR_clear_error();
      throw std::runtime_error(path + ": EC key not on P-256 (prime256v1)");
    }
    return key;
  }
  const char* type = EVP_PKEY_get0_type_name(key.get());
  throw std::runtime_error(path + ": unsupported key type " +
                           std::string(type != nullptr ? type : "?") + " (RSA or EC P-256)");
}

bool verify_signature(EVP_PKEY* key, const EVP_MD* md, std::string_view data,
                      std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = false;
  if (ctx != nullptr) {
    ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
         EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
    EVP_MD_CTX_free(ctx);
  }
  ERR_clear_error();  // a failed verify leaves errors that TLS code on this thread would read
  return ok;
}

class cloudfront_verifier final : public url_verifier {
 public:
  explicit cloudfront_verifier(const cloudfront_settings& s)
      : skew_(s.clock_skew.count()),
        cookies_(s.signed_cookies),
        sha1_(fetch_digest("SHA1")),
        sha256_(fetch_digest("SHA256")) {
    if (s.keys.empty()) throw std::runtime_error("cloudfront: no public keys configured");
    if (skew_ < 0) throw std::runtime_error("cloudfront: clock_skew is negative");
    for (const auto& k : s.keys) {
      if (!valid_key_id(k.id))
        throw std::runtime_error("cloudfront: key id '" + k.id +
                                 "' is empty, longer than 128 or not [A-Za-z0-9_-]");
      if (keys_.contains(k.id))
        throw std::runtime_error("cloudfront: key id '" + k.id + "' configured twice");
      keys_.emplace(k.id, load_public_key(k.public_key_path));
    }
  }

  std::span<const std::string_view> parameters() const override { return query_names; }

  signature_result verify(const signed_request& r) const override {
    std::array<std::optional<std::string_view>, name_count> v;
    if (detail::find_pairs(r.query, '&', query_names, v) != detail::lookup_status::ok)
      return signature_result::malformed;
    bool any = false;
    for (const auto& x : v)
      any = any || x.has_value();
    if (!any && cookies_) {  // the query wins: cookies are read only when it has none
      if (detail::find_pairs(r.cookies, ';', cookie_names, v) != detail::lookup_status::ok)
        return signature_result::malformed;
      for (const auto& x : v)
        any = any || x.has_value();
    }
    if (!any) return signature_result::missing;
    if (!v[signature_i] || !v[key_id_i] || v[expires_i].has_value() == v[policy_i].has_value())
      return signature_result::malformed;

    const EVP_MD* md = sha1_.get();
    if (v[hash_i]) {
      if (*v[hash_i] == "SHA256")
        md = sha256_.get();
      else if (*v[hash_i] != "SHA1")
        return signature_result::malformed;
    }
    const auto signature =
        base64_decode(*v[signature_i], base64_alphabet::cloudfront, max_signature_bytes);
    if (!signature || signature->empty()) return signature_result::malformed;
    const auto key = keys_.find(*v[key_id_i]);
    if (key == keys_.end()) return signature_result::unknown_key;

    // The URL as CloudFront saw it: the signing parameters removed, the others in order.
    const std::string rest = detail::strip_query(r.query, query_names);
    std::string url;
    url.reserve(r.scheme.size() + 3 + r.host.size() + r.path.size() + 1 + rest.size());
    url.append(r.scheme).append("://").append(r.host).append(r.path);
    if (!rest.empty()) url.append("?").append(rest);

    if (v[expires_i])
      return verify_canned(r, url, *v[expires_i], key->second.get(), md, *signature);
    return verify_custom(r, url, *v[policy_i], key->second.get(), md, *signature);
  }

 private:
  signature_result verify_canned(const signed_request& r, std::string_view url,
                                 std::string_view expires_text, EVP_PKEY* key, const EVP_MD* md,
                                 std::string_view signature) const {
    const auto expires = detail::parse_decimal(expires_text);
    if (!expires) return signature_result::malformed;
    std::string policy;
    policy.reserve(url.size() + 96);
    policy.append(R"({"Statement":[{"Resource":")")
        .append(url)
        .append(R"(","Condition":{"DateLessThan":{"AWS:EpochTime":)")
        .append(std::to_string(*expires))
        .append("}}}]}");
    if (!verify_signature(key, md, policy, signature)) return signature_result::bad_signature;
    if (r.now >= detail::saturating_add(*expires, skew_)) return signature_result::expired;
    return signature_result::ok;
  }

  signature_result verify_custom(const signed_request& r, std::string_view url,
                                 std::string_view policy_text, EVP_PKEY* key, const EVP_MD* md,
                                 std::string_view signature) const {
    const auto policy_json =
        base64_decode(policy_text, base64_alphabet::cloudfront, max_policy_bytes);
    if (!policy_json || policy_json->empty()) return signature_result::malformed;
    if (!verify_signature(key, md, *policy_json, signature)) return signature_result::bad_signature;
    const auto policy = parse_cloudfront_policy(*policy_json);
    if (!policy) return signature_result::malformed;
    if (!wildcard_match(policy->resource, url)) return signature_result::wrong_resource;
    if (r.now >= detail::saturating_add(policy->date_less_than, skew_))
      return signature_result::expired;
    if (policy->date_greater_than &&
        detail::saturating_add(r.now, skew_) < *policy->date_greater_than)
      return signature_result::not_yet_valid;
    if (policy->source_ip) {
      const auto net = detail::parse_cidr(*policy->source_ip);
      if (!net) return signature_result::malformed;
      const auto client = detail::parse_ip(r.client_ip);
      if (!client || !detail::contains(*net, *client)) return signature_result::wrong_ip;
    }
    return signature_result::ok;
  }

  std::int64_t skew_;
  bool cookies_;
  md_ptr sha1_;
  md_ptr sha256_;
  std::map<std::string, pkey_ptr, std::less<>> keys_;
};

}  // namespace

std::unique_ptr<url_verifier> make_cloudfront_verifier(const cloudfront_settings& settings) {
  return std::make_unique<cloudfront_verifier>(settings);
}

}  // namespace storecache::access
