// IMS Content Packaging manifests (imsmanifest.xml) as SCORM 1.2 and SCORM 2004 (3rd and 4th
// editions) write them:
//
//   <manifest identifier="course12" xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"
//             xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" xml:base="content/">
//     <organizations>…</organizations>
//     <resources xml:base="sco1/">
//       <resource identifier="r1" type="webcontent" adlcp:scormType="sco" href="index.html?x=1">
//         <file href="index.html"/> <file href="media/intro.mp4"/>
//       </resource>
//     </resources>
//     <manifest identifier="sub">…</manifest>   <!-- a sub-manifest, walked the same way -->
//   </manifest>
//
// Every resource's href and every file's href is an object. Each resolves against its
// element's base: the xml:base of `manifest`, `resources` and `resource` (the three elements
// the SCORM CAM gives one), each relative to the enclosing one, the outermost relative to the
// manifest's own path (XML Base §4.2).
#include <optional>
#include <string>
#include <vector>

#include "prefetch/formats.hpp"
#include "prefetch/xml_reader.hpp"

namespace storecache::prefetch {
namespace {

class manifest_reader final : public xml_events {
 public:
  explicit manifest_reader(collector& out) : out_(out) { bases_.push_back({0, out.source_path()}); }

  void start(std::string_view name, const char** attributes) override {
    ++depth_;
    const bool is_resource = name == "resource";
    if (name == "manifest" || name == "resources" || is_resource) push_base(attributes);
    if (is_resource || name == "file") {
      if (const char* href = attribute(attributes, "href")) add(href);
    }
  }

  void end(std::string_view) override {
    if (bases_.back().depth == depth_) bases_.pop_back();
    --depth_;
  }

 private:
  struct base {
    std::size_t depth;                // the element that set it
    std::optional<std::string> path;  // nullopt: its xml:base left the site
  };

  void push_base(const char** attributes) {
    const char* value = attribute(attributes, "xml:base");
    if (!value || !*value) return;  // xml:base="" is the enclosing base (RFC 3986 §5.2.2)
    const auto& parent = bases_.back().path;
    if (!parent) return bases_.push_back({depth_, std::nullopt});
    std::string why;
    auto path = resolve(*parent, value, out_.site_name(), &why);
    if (!path) out_.reject(value, "xml:base: " + why);
    bases_.push_back({depth_, std::move(path)});
  }

  void add(std::string_view href) {
    const auto& base = bases_.back().path;
    if (!base) return out_.reject(href, "under a rejected xml:base");
    if (!out_.add(*base, href, entry_role::object)) stop();
  }

  collector& out_;
  std::size_t depth_ = 0;
  std::vector<base> bases_;  // at most max_xml_depth + 1
};

}  // namespace

void parse_ims_manifest(std::string_view body, collector& out) {
  manifest_reader reader(out);
  if (auto error = read_xml(body, "manifest", reader); !error.empty()) out.fail(std::move(error));
}

}  // namespace storecache::prefetch
