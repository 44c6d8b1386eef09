// HTTP-dates (cache/http_date.hpp) as Date, Expires, Last-Modified and If-Modified-Since carry
// them: a date that parses formats to an IMF-fixdate that parses back to the same second,
// and the freshness computed from an Expires/Date pair never overflows.
// Input: "<Expires value>\n<Date value>".
#include <chrono>
#include <cstdint>

#include "cache/http_date.hpp"
#include "cache/policy.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::cache;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view whole = storecache::fuzz::as_text(data, size);
  const storecache::fuzz::fields<2> in(whole);
  for (const std::string_view text : {whole, in.part[0], in.part[1]}) {
    const auto t = parse_http_date(text);
    if (!t) continue;
    const std::string fixdate = format_http_date(*t);
    FUZZ_CHECK(fixdate.size() == 29 && fixdate.ends_with(" GMT"));
    const auto again = parse_http_date(fixdate);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(std::chrono::floor<std::chrono::seconds>(*again) ==
               std::chrono::floor<std::chrono::seconds>(*t));
    FUZZ_CHECK(format_http_date(*again) == fixdate);
  }

  // As the fields the policy reads them (with and without Last-Modified).
  const clock_time now{std::chrono::seconds(1'800'000'000)};
  const response_times times{now - std::chrono::seconds(1), now};
  header_list h = {{"expires", std::string(in.part[0])}, {"date", std::string(in.part[1])}};
  site_policy site;
  for (int round = 0; round < 2; ++round) {
    const auto f = freshness_lifetime(200, h, times, site);
    FUZZ_CHECK(f.lifetime.count() >= 0);
    const auto d = decide_reuse(200, h, times, {}, now + std::chrono::seconds(5), site);
    FUZZ_CHECK(d.age.count() >= 0);
    client_not_modified({{"if-modified-since", std::string(in.part[0])}}, h);
    h.push_back({"last-modified", std::string(in.part[0])});
  }
  return 0;
}
