// The expat set-up both XML listings share (imsmanifest.xml, cmi5.xml): element events with
// local names (any namespace prefix), the root checked, DTD entities refused, depth bounded,
// and expat's message with its line as the error. Internal to prefetch/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace storecache::prefetch {

// Deeper than this is an error: no real manifest comes close (SCORM's nest about 8 deep), and
// it bounds what a reader keeps per open element.
inline constexpr std::size_t max_xml_depth = 256;

class xml_events {
 public:
  // attributes: expat's name/value pairs, names as written ("xml:base", "adlcp:scormtype").
  virtual void start(std::string_view local_name, const char** attributes) = 0;
  virtual void end(std::string_view local_name) = 0;
  virtual void text(std::string_view) {}
  // Asks the reader to stop after this event (not an error: max_entries reached).
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 protected:
  ~xml_events() = default;

 private:
  bool stopped_ = false;
};

// Reads `body` into `events`; the error ("line 3: mismatched tag") or empty.
std::string read_xml(std::string_view body, std::string_view root, xml_events& events);

// The value of attribute `name` (as written), or nullptr.
const char* attribute(const char** attributes, std::string_view name);

}  // namespace storecache::prefetch
