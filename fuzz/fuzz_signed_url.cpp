// The signed-URL verifiers (access/: cloudfront, secure_link, hmac_url, as a site's
// [site.signed_urls] builds them) on any request: path, query and cookies as a device sends
// them. Keys are the unit tests' (tests/data/signed_urls), so the seeds are valid signed
// requests and mutations of them reach every check after the signature's.
// Input: "<path>\n<query>\n<cookies>\n<client address>".
#include <cstdint>
#include <memory>
#include <string>

#include "access/cloudfront.hpp"
#include "access/hmac_url.hpp"
#include "access/secure_link.hpp"
#include "access/signed_requests.hpp"
#include "access/signed_url.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::access;

namespace {

std::string key_file(const char* name) {
  return std::string(STORECACHE_SOURCE_DIR) + "/tests/data/signed_urls/" + name;
}

struct verifiers {
  std::unique_ptr<url_verifier> cloudfront, secure_link, hmac;
  verifiers() {
    cloudfront_settings c;
    c.keys = {{"KRSA", key_file("rsa_public.pem")}, {"KEC", key_file("ec_public.pem")}};
    cloudfront = make_cloudfront_verifier(c);
    secure_link_settings s;
    s.md5_template = "$secure_link_expires$uri$remote_addr secret-for-tests";
    secure_link = make_secure_link_verifier(s);
    hmac_settings h;
    h.keys = {{"k1", key_file("hmac_k1.secret")}, {"k2", key_file("hmac_k2.secret")}};
    hmac = make_hmac_verifier(h);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const verifiers v;
  const storecache::fuzz::fields<4> in(storecache::fuzz::as_text(data, size));
  signed_request r;
  r.host = "lms.example.com";
  r.path = in.part[0];
  r.query = in.part[1];
  r.cookies = in.part[2];
  r.client_ip = in.part[3].empty() ? std::string_view("10.1.2.3") : in.part[3];
  r.now = 1'900'000'000;
  for (const auto* verifier : {v.cloudfront.get(), v.secure_link.get(), v.hmac.get()}) {
    const signature_result result = verifier->verify(r);
    FUZZ_CHECK(!to_string(result).empty());
    // No signature parameter at all can never be ok.
    bool any = false;
    for (const auto name : verifier->parameters())
      any = any || r.query.find(name) != std::string_view::npos ||
            r.cookies.find(name) != std::string_view::npos;
    if (!any) FUZZ_CHECK(result != signature_result::ok);
  }
  return 0;
}
