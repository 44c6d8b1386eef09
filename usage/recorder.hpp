// The in-memory side of the usage history: workers record each request (and each upstream
// body) here; the daemon's control thread takes the accumulated delta every few seconds and
// adds it to the history in one write transaction. Thread-safe; a record is a few array
// increments and one hash-map lookup under a mutex of its own shard (shards by thread), so
// workers do not contend. Memory is bounded: at most max_assets_per_window distinct asset names
// per window; more are folded into other_assets.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/denial.hpp"
#include "usage/content_class.hpp"
#include "usage/device.hpp"
#include "usage/history.hpp"

namespace storecache::usage {

inline constexpr std::size_t max_assets_per_window = 4096;

// One answered client request.
struct request_facts {
  std::int64_t unix_seconds = 0;  // when it ended
  std::string_view site;          // the site's name
  std::string_view path;          // request path; anything from '?' on is ignored
  content_class content = content_class::other;
  device dev;
  tls_version tls = tls_version::other;
  bool http2 = false;
  bool from_cache = false;  // hit, stale or revalidated: the body came from the store
  std::uint64_t bytes = 0;  // response body bytes sent
  unsigned status = 200;    // 4xx/5xx answers count everywhere but in the asset buckets
};

// One upstream response body (or the part that arrived before a failure), or a failed
// upstream request (bytes 0).
struct upstream_facts {
  std::int64_t unix_seconds = 0;
  std::string_view site;
  std::string_view path;
  content_class content = content_class::other;
  std::uint64_t bytes = 0;
  bool prefetch = false;  // fetched by prefetch, not for a device: counted in prefetch_* too
};

// One refusal for an access reason (access/denial.hpp): a request answered 403 by the
// admission step or the signature check, a request the upstream refused (authorize with
// upstream), or a connection refused at accept or in the TLS handshake.
struct denial_facts {
  std::int64_t unix_seconds = 0;
  std::string_view site;  // the site's name; empty when refused before a site was known
  access::denial reason = access::denial::network;
};

class recorder {
 public:
  recorder();
  ~recorder();
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  // Adds to the buckets total, content, device, os_version, tls, protocol, asset and site.
  // Error answers (status >= 400) skip the asset buckets: a client probing random paths must
  // not fill an hour's asset cap and push the real content into other_assets.
  void record(const request_facts& r);
  // Adds upstream_bytes and upstream_requests (1) to total, content, asset and site; with
  // u.prefetch, prefetch_bytes and prefetch_requests too.
  void record(const upstream_facts& u);
  // Adds one to denied[reason] in total and (when site is not empty) in site.
  void record(const denial_facts& d);

  // Everything recorded since the last take(), and resets it.
  usage_delta take();

  // The prefetch readiness to store: kept (the latest call wins) until the next flush writes it
  // into the history, replacing what was stored; an empty vector clears it. From any thread.
  void set_prefetch(std::vector<prefetch_state> sources);
  // What set_prefetch left since the last call (nullopt when nothing was set): the flush's
  // part. saved_unix is now_unix.
  std::optional<prefetch_snapshot> take_prefetch(std::int64_t now_unix);
  // Puts back a set take_prefetch gave that could not be written (the next flush tries again),
  // unless set_prefetch was called since.
  void untake_prefetch(prefetch_snapshot taken);

 private:
  struct shard;
  shard& my_shard();
  static constexpr std::size_t shard_count = 8;
  std::array<std::unique_ptr<shard>, shard_count> shards_;
  std::mutex prefetch_mu_;
  std::optional<std::vector<prefetch_state>> prefetch_;
};

}  // namespace storecache::usage
