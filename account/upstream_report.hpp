// What an upstream exchange leaves behind: the site's upstream counters (requests by status
// class, errors by kind, body bytes) and, once it ends, a usage-history record of its bytes.
// The fill reports through it (upstream::fetch_report); so does the handler's pass-through.
#pragma once

#include <cstdint>
#include <string>

#include "account/metrics.hpp"
#include "upstream/fill_job.hpp"

namespace storecache::usage {
class recorder;
}

namespace storecache::account {

class upstream_report final : public upstream::fetch_report {
 public:
  // counters: stable for the process's life (metrics); usage: may be null (no history), else
  // it outlives every worker, and so every fill. prefetch: the exchange is prefetch's, not a
  // device's; its bytes are recorded as prefetch_bytes too (usage::upstream_facts::prefetch).
  upstream_report(site_counters& counters, usage::recorder* usage, std::string site,
                  std::string path, bool prefetch = false);

  bool prefetch() const { return prefetch_; }

  void response(unsigned status) override;
  void no_response(upstream::upstream_error e) override;
  void failed(upstream::upstream_error e) override;
  void body(std::size_t n) override;
  void exchange_done(const cache::header_list& response_headers, std::uint64_t bytes) override;

 private:
  site_counters& counters_;
  usage::recorder* usage_;
  std::string site_;
  std::string path_;
  bool prefetch_ = false;
};

}  // namespace storecache::account
