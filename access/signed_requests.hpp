// Signed content without a verifier (`[site.signed_urls] scheme = "upstream"`, the default):
// which requests carry a credential in their query that the cache key leaves out.
//
// A site's ignore_query_params drops signed-URL parameters from the cache key so that
// rotating signatures share one stored copy. Without a verifier, storecache cannot tell a
// valid signature from a forged one, so a request that carries such a parameter is keyed
// apart from unsigned requests (signed_variant) and each one is authorized by the upstream
// with the device's own URL before a stored copy is served. A request with no such parameter
// is keyed as before: what the upstream answered to unsigned requests is public.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace storecache::access {

// Is this query parameter name one a signed-URL scheme carries its credential in? CloudFront
// (Signature, Policy, Key-Pair-Id, Expires), S3/SigV4 (X-Amz-*), Akamai (hdnts, hdnea,
// __token__), nginx secure_link (md5, st, e, expires), Azure SAS (sig, se, sv, sp), Google
// (X-Goog-*, GoogleAccessId), ours (sc_*), and any name containing "signature", "token"
// or "hmac". Case-insensitive.
bool signature_looking(std::string_view name);

// Any of `names` (the parameters the cache key dropped) signature-looking?
bool any_signature_looking(const std::vector<std::string>& names);

// The cache key of a request that carries a dropped signature parameter: never equal to an
// unsigned request's key ('#' cannot occur in a primary key; the fragment is stripped).
std::string signed_variant(std::string_view primary_key);

}  // namespace storecache::access
