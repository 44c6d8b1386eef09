#include "upstream/orphan_policy.hpp"

namespace storecache::upstream {

orphan_policy orphan_policy::from_config(const config::cache_settings& c) {
  return {c.finish_orphans_below, c.finish_orphans_after, c.finish_orphans_wanted_by,
          c.orphan_grace};
}

orphan_verdict judge_orphan(const orphan_policy& p, const orphan_facts& f) {
  if (f.background) return orphan_verdict::background;
  if (p.wanted_by > 0 && f.requesters >= p.wanted_by) return orphan_verdict::wanted;
  // Unknown length (chunked): small for as long as what arrived stays under the bound.
  const std::uint64_t size = f.length.value_or(f.arrived);
  if (size <= p.finish_below && f.arrived <= p.finish_below) return orphan_verdict::small;
  if (f.length && *f.length > 0 && p.finish_after < 1.0 &&
      static_cast<double>(f.arrived) >= p.finish_after * static_cast<double>(*f.length))
    return orphan_verdict::mostly_there;
  return orphan_verdict::stop;
}

std::string_view to_string(orphan_verdict v) {
  switch (v) {
    case orphan_verdict::stop:
      return "stop";
    case orphan_verdict::background:
      return "background";
    case orphan_verdict::small:
      return "small";
    case orphan_verdict::mostly_there:
      return "mostly_there";
    case orphan_verdict::wanted:
      return "wanted";
  }
  return "stop";
}

}  // namespace storecache::upstream
