// The RFC 9211 Cache-Status field value storecache adds to every response, e.g.
//   storecache; hit; ttl=3540
//   storecache; fwd=miss; stored
//   storecache; fwd=stale; fwd-status=304; ttl=600
//   storecache; fwd=uri-miss; collapsed
//   storecache; hit; detail=stale-if-error
// It is a Structured Fields List with one member (our cache) and its parameters, in the
// RFC's order: hit, fwd, fwd-status, ttl, stored, collapsed, key, detail.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace storecache::cache {

// RFC 9211 §2.2 fwd reasons.
enum class forward_reason {
  none,       // not forwarded (a hit, or answered without the origin, e.g. 504 only-if-cached)
  bypass,     // configured to bypass the cache
  method,     // request method not cacheable
  uri_miss,   // nothing stored for the URI
  vary_miss,  // stored, but no variant matches
  miss,       // not stored (when uri/vary is not known)
  request,    // the request asked for it (no-cache, max-age=0, ...)
  stale,      // stored but stale: revalidated or refetched
  partial,    // stored but only partially (a range the cache does not have)
};
std::string_view to_string(forward_reason r);

struct cache_status {
  bool hit = false;  // answered from the cache without the origin
  forward_reason fwd = forward_reason::none;
  std::optional<int> fwd_status;            // status the origin answered (304, 200, ...)
  std::optional<std::chrono::seconds> ttl;  // remaining freshness; negative when stale
  bool stored = false;                      // the forwarded response was stored
  bool collapsed = false;                   // joined another request's upstream fetch
  std::string key;                          // optional, for debugging: the cache key
  std::string detail;                       // optional extra information
};

// Formats the field value. `cache_name` is the list member naming this cache (an sf-token).
// key and detail become an sf-token when their text is one, otherwise an sf-string (with
// '"' and '\' escaped and characters outside printable ASCII dropped).
std::string format_cache_status(const cache_status& status,
                                std::string_view cache_name = "storecache");

}  // namespace storecache::cache
