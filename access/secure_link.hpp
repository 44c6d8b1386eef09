// nginx secure_link (the secure_link / secure_link_md5 mode): the link carries
// base64url(MD5(expression)) and an expiry; the expression is nginx's secure_link_md5
// template with the secret written into it. Our $uri choice and the differences from nginx
// are in SIGNED_URLS.md.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "access/signed_url.hpp"

namespace storecache::access {

struct secure_link_settings {
  // As nginx's secure_link_md5, e.g. "$secure_link_expires$uri$remote_addr secret". Variables:
  // $secure_link_expires, $uri, $remote_addr, $host, $scheme, $arg_NAME (also as ${name}).
  // It holds the secret: never log it. Must use $uri, and $secure_link_expires when
  // expires_parameter is set (else anyone could change the expiry).
  std::string md5_template;
  std::string hash_parameter = "md5";         // secure_link $arg_md5,$arg_expires
  std::string expires_parameter = "expires";  // empty: links never expire (as nginx allows)
  std::chrono::seconds clock_skew{30};
};

// Throws std::runtime_error naming what is wrong with the template or the parameter names
// (never quoting the template, which holds the secret).
std::unique_ptr<url_verifier> make_secure_link_verifier(const secure_link_settings& settings);

}  // namespace storecache::access
