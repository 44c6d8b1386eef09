// cmi5 course structures (cmi5.xml, the cmi5 spec §13):
//
//   <courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
//     <course id="…"><title><langstring lang="en-US">…</langstring></title></course>
//     <block id="…">
//       <au id="…" moveOn="CompletedOrPassed"><title>…</title><url>au1/index.html</url></au>
//     </block>
//   </courseStructure>
//
// Every `au`'s `url` child is an object, resolved against the cmi5.xml's path. The spec allows
// an AU hosted anywhere; one on another host is rejected like any off-site reference.
#include <string>
#include <vector>

#include "prefetch/formats.hpp"
#include "prefetch/xml_reader.hpp"

namespace storecache::prefetch {
namespace {

class course_reader final : public xml_events {
 public:
  explicit course_reader(collector& out) : out_(out) {}

  void start(std::string_view name, const char**) override {
    in_url_ = name == "url" && !open_.empty() && open_.back() == "au";
    url_.clear();
    open_.emplace_back(name);
  }

  void end(std::string_view) override {
    open_.pop_back();
    if (!in_url_) return;
    in_url_ = false;
    const auto first = url_.find_first_not_of(" \t\r\n");
    const auto text =
        first == std::string::npos
            ? std::string_view{}
            : std::string_view(url_).substr(first, url_.find_last_not_of(" \t\r\n") - first + 1);
    if (!out_.add(out_.source_path(), text, entry_role::object)) stop();
  }

  void text(std::string_view s) override {
    // Past this, the reference is too long whatever it says: keep no more of it.
    if (in_url_ && url_.size() <= 2 * max_reference_length)
      url_.append(s.substr(0, 2 * max_reference_length + 1 - url_.size()));
  }

 private:
  collector& out_;
  std::vector<std::string> open_;  // the open elements' local names, at most max_xml_depth
  bool in_url_ = false;
  std::string url_;
};

}  // namespace

void parse_cmi5(std::string_view body, collector& out) {
  course_reader reader(out);
  if (auto error = read_xml(body, "courseStructure", reader); !error.empty())
    out.fail(std::move(error));
}

}  // namespace storecache::prefetch
