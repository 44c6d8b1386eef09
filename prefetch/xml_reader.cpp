// expat, made safe for listings anyone can publish:
//   - any entity declaration stops the parse with an error, so neither a billion laughs
//     (entities expanding to entities) nor an external entity (file:///etc/passwd) gets as far
//     as an expansion. expat 2.5 would also stop the first at 100x amplification on its own
//     (its protection since 2.4.0, on by default); ours comes first and costs nothing.
//   - external entities and parameter entities are never loaded: no handler is set, and
//     parameter entity parsing is off (XML_PARAM_ENTITY_PARSING_NEVER).
//   - elements nested deeper than max_xml_depth are an error.
// No namespace processing: a manifest with an undeclared prefix (not rare in hand-edited
// packages) still reads, and elements are matched by local name, whatever their prefix.
// expat 2.6's XML_SetReparseDeferralEnabled is about the cost of large tokens fed in small
// pieces; the body is fed in 1 MiB pieces, so it changes nothing here (Debian 12 has 2.5).
#include "prefetch/xml_reader.hpp"

#include <expat.h>

#include <algorithm>
#include <memory>

namespace storecache::prefetch {
namespace {

struct parse_state {
  XML_Parser parser;
  xml_events& events;
  std::string_view root;
  std::size_t depth = 0;
  std::string error;
};

std::string_view local_name(std::string_view name) {
  const auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// expat may still report the end of the element whose start stopped it (<a/>): after a stop,
// nothing more reaches the events, whose stacks saw no start.
bool halted(const parse_state& s) {
  return !s.error.empty() || s.events.stopped();
}

void fail(parse_state& s, std::string message) {
  s.error = "line " + std::to_string(XML_GetCurrentLineNumber(s.parser)) + ": " + message;
  XML_StopParser(s.parser, XML_FALSE);
}

void on_start(void* data, const XML_Char* name, const XML_Char** attributes) {
  auto& s = *static_cast<parse_state*>(data);
  if (halted(s)) return;
  const auto local = local_name(name);
  if (s.depth == 0 && local != s.root)
    return fail(s,
                "root element is <" + std::string(name) + ">, not <" + std::string(s.root) + ">");
  if (++s.depth > max_xml_depth)
    return fail(s, "elements nested deeper than " + std::to_string(max_xml_depth));
  s.events.start(local, attributes);
  if (s.events.stopped()) XML_StopParser(s.parser, XML_FALSE);
}

void on_end(void* data, const XML_Char* name) {
  auto& s = *static_cast<parse_state*>(data);
  if (halted(s)) return;
  --s.depth;
  s.events.end(local_name(name));
  if (s.events.stopped()) XML_StopParser(s.parser, XML_FALSE);
}

void on_text(void* data, const XML_Char* text, int length) {
  auto& s = *static_cast<parse_state*>(data);
  if (halted(s)) return;
  s.events.text({text, static_cast<std::size_t>(length)});
}

void on_entity_decl(void* data, const XML_Char* name, int, const XML_Char*, int, const XML_Char*,
                    const XML_Char*, const XML_Char*, const XML_Char*) {
  auto& s = *static_cast<parse_state*>(data);
  fail(s, "entity declarations are not allowed (" + std::string(name) + ")");
}

}  // namespace

const char* attribute(const char** attributes, std::string_view name) {
  for (auto a = attributes; a[0]; a += 2)
    if (name == a[0]) return a[1];
  return nullptr;
}

std::string read_xml(std::string_view body, std::string_view root, xml_events& events) {
  const std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(
      XML_ParserCreate(nullptr), &XML_ParserFree);
  if (!parser) return "out of memory";
  parse_state s{parser.get(), events, root, 0, {}};
  XML_SetUserData(parser.get(), &s);
  XML_SetElementHandler(parser.get(), on_start, on_end);
  XML_SetCharacterDataHandler(parser.get(), on_text);
  XML_SetEntityDeclHandler(parser.get(), on_entity_decl);
  XML_SetParamEntityParsing(parser.get(), XML_PARAM_ENTITY_PARSING_NEVER);

  constexpr std::size_t piece = 1 << 20;  // XML_Parse takes an int length
  do {
    const auto n = std::min(body.size(), piece);
    const bool last = n == body.size();
    if (XML_Parse(parser.get(), body.data(), static_cast<int>(n), last) != XML_STATUS_OK) {
      if (!s.error.empty() || events.stopped()) return s.error;
      return "line " + std::to_string(XML_GetCurrentLineNumber(parser.get())) + ": " +
             XML_ErrorString(XML_GetErrorCode(parser.get()));
    }
    body.remove_prefix(n);
  } while (!body.empty());
  return {};
}

}  // namespace storecache::prefetch
