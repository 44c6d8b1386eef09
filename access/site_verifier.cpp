#include "access/site_verifier.hpp"

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "access/cloudfront.hpp"
#include "access/hmac_url.hpp"
#include "access/secure_link.hpp"

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

}  // namespace storecache::access
