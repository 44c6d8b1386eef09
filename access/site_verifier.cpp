#include "access/site_verifier.hpp"

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "access/cloudfront.hpp"
#include "access/hmac_url.hpp"
#include "access/secure_link.hpp"
#include "access/signed_requests.hpp"

namespace storecache::access {
namespace {

std::string read_secret(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  if (s.size() < 16)
    throw std::runtime_error(file.string() + ": a secret of at least 16 bytes is needed");
  return s;
}

std::unique_ptr<url_verifier> make(const config::site_signed_urls& s) {
  switch (s.scheme) {
    case config::signed_url_scheme::cloudfront: {
      cloudfront_settings cs;
      for (const auto& k : s.keys)
        cs.keys.push_back({k.id, k.file.string()});
      cs.clock_skew = s.clock_skew;
      cs.signed_cookies = s.cookies;
      return make_cloudfront_verifier(cs);
    }
    case config::signed_url_scheme::hmac: {
      hmac_settings hs;
      for (const auto& k : s.keys)
        hs.keys.push_back({k.id, k.file.string()});
      hs.clock_skew = s.clock_skew;
      return make_hmac_verifier(hs);
    }
    case config::signed_url_scheme::secure_link: {
      secure_link_settings ls;
      ls.md5_template = s.secure_link_md5;
      if (auto at = ls.md5_template.find("$secret"); at != std::string::npos) {
        if (s.secret_file.empty())
          throw std::runtime_error("secure_link_md5 uses $secret but no secret_file is set");
        ls.md5_template.replace(at, 7, read_secret(s.secret_file));
      }
      ls.hash_parameter = s.md5_param;
      ls.expires_parameter = s.expires_param;
      ls.clock_skew = s.clock_skew;
      return make_secure_link_verifier(ls);
    }
    case config::signed_url_scheme::upstream:
    case config::signed_url_scheme::none:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<url_verifier> make_site_verifier(const config::site& site) {
  try {
    return make(site.signed_urls);
  } catch (const std::exception& e) {
    throw std::runtime_error("site " + site.name() + ": signed_urls: " + e.what());
  }
}

bool must_be_signed(const config::site_signed_urls& s, std::string_view path) {
  if (!s.verifies()) return false;
  for (const auto& p : s.paths)
    if (config::glob_match(p, path)) return true;
  return false;
}

std::vector<std::string> describe_protection(const config::site& site) {
  std::vector<std::string> out;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
      s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  const auto& a = site.access;
  if (a.allow_clients.empty())
    out.push_back("clients: every address that reaches the listener");
  else
    out.push_back("clients: only " + std::to_string(a.allow_clients.size()) +
                  " network(s) in [site.access] allow_clients; others are refused");
  switch (a.client.mode) {
    case config::client_cert_mode::off:
      out.push_back("device certificates: not asked for");
      break;
    case config::client_cert_mode::optional:
      out.push_back(
          "device certificates: optional; required on paths of [[site.access.rule]] "
          "client_cert = true (403 otherwise)");
      break;
    case config::client_cert_mode::required:
      out.push_back("device certificates: required (no valid certificate, no TLS)");
      break;
  }

  const auto& s = site.signed_urls;
  std::vector<std::string> signature_params;
  for (const auto& p : site.cache.ignore_query_params)
    if (signature_looking(p.back() == '*' ? p.substr(0, p.size() - 1) : p))
      signature_params.push_back(p);
  switch (s.scheme) {
    case config::signed_url_scheme::cloudfront:
    case config::signed_url_scheme::secure_link:
    case config::signed_url_scheme::hmac:
      out.push_back("signed URLs: " + std::string(to_string(s.scheme)) + ", verified here on " +
                    join(s.paths) + " (" + std::to_string(s.keys.size()) + " key(s), clock skew " +
                    std::to_string(s.clock_skew.count()) +
                    "s); a missing, forged or expired signature gets 403 and never reaches the "
                    "upstream");
      break;
    case config::signed_url_scheme::upstream:
      if (signature_params.empty())
        out.push_back(
            "signed URLs: no signature parameter is left out of the cache key; "
            "nothing to verify");
      else
        out.push_back("signed URLs: not verified here; a request carrying " +
                      join(signature_params) +
                      " (left out of the cache key) shares a stored copy only with other signed "
                      "requests, each authorized by the upstream first (a HEAD with the "
                      "device's URL); a request without them is keyed apart");
      break;
    case config::signed_url_scheme::none:
      out.push_back(
          "signed URLs: scheme = \"none\": a stored copy is served to every device, "
          "whatever signature it carries or lacks" +
          (signature_params.empty()
               ? std::string()
               : " (WARNING: " + join(signature_params) +
                     " are left out of the cache key; if they protect content, "
                     "anyone on the LAN gets it)"));
      break;
  }
  std::vector<std::string> authorized;
  for (const auto& r : site.cache.rules)
    if (r.authorize_with_upstream) authorized.push_back(r.pattern);
  if (!authorized.empty())
    out.push_back("authorized by the upstream on every request: " + join(authorized) +
                  " (remembered " + std::to_string(site.cache.authorize_cache.count()) +
                  "s per URL and credentials)");
  return out;
}

}  // namespace storecache::access
