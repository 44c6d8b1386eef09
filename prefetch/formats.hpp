// The format parsers behind parse(), one .cpp each. Internal to prefetch/.
#pragma once

#include <optional>
#include <string_view>

#include "prefetch/collector.hpp"
#include "prefetch/listing.hpp"

namespace storecache::prefetch {

void parse_url_list(std::string_view body, collector& out);
void parse_ims_manifest(std::string_view body, collector& out);
void parse_hls(std::string_view body, hls_variants variants, collector& out);
void parse_cmi5(std::string_view body, collector& out);

// The listing kind a path's last segment names (before any query): .m3u8/.m3u, imsmanifest.xml,
// cmi5.xml; nullopt for anything else.
std::optional<source_kind> listing_name_kind(std::string_view path);

}  // namespace storecache::prefetch
