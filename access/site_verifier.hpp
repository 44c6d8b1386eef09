// A site's [site.signed_urls], as the verifier that checks it: the bridge from config/ to the
// schemes (cloudfront.hpp, secure_link.hpp, hmac_url.hpp). Built with the runtime, at start-up
// and on every reload, so a replaced key file takes effect on SIGHUP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "access/signed_url.hpp"
#include "config/config.hpp"

namespace storecache::access {

// nullptr for the schemes storecache does not verify itself ("upstream", "none"). Reads the
// key and secret files; throws std::runtime_error naming the site and the file. Never puts a
// secret in its message.
std::unique_ptr<url_verifier> make_site_verifier(const config::site& site);

// Does the site's verifier apply to this path (no query)? [site.signed_urls] paths.
bool must_be_signed(const config::site_signed_urls& s, std::string_view path);

// What the site's access settings do, one line each, for `storecache --check-config`: who may
// connect, device certificates, signed URLs (what a request without a valid signature gets),
// paths authorized by the upstream. Names no secret.
std::vector<std::string> describe_protection(const config::site& site);

}  // namespace storecache::access
