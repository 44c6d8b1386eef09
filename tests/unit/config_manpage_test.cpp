// The manual pages checked against the code, so that they cannot drift from it:
// storecache.toml(5) against the config loader's own schema (config/schema.hpp), and
// storecache(8) against the command line of proxy/main.cpp.
//
// The convention of packaging/man/storecache.toml.5 that this test reads (the page repeats it):
//   - its section ".SH KEYS" holds one ".SS" per table of the schema, titled exactly as the
//     schema's header: .SS "[limits]", .SS "[[site.cache.rule]]", .SS "server.listen entry";
//   - in that section every ".TP" starts one key's entry, and the line after it is ".B <key>",
//     the key alone; the entry runs to the next .TP, .SS, .SH, .PP, .P or .LP;
//   - an entry states its default: one of its lines begins with "Default:" or "Required".
// A key that names a sub-table (cache, access, signed_urls in [[site]]; rule; key) is a key too:
// its entry points to the sub-table's section.
//
// And of packaging/man/storecache.8: every option in main.cpp's usage text ("--config",
// "--since", ...) and the command "report" are the tag of an entry (the line after a .TP); every
// option tagged in the page is one main.cpp compares an argument with.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"

namespace {

using storecache::config::table_schema;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string source_dir = STORECACHE_SOURCE_DIR;
const std::string toml_page_path = source_dir + "/packaging/man/storecache.toml.5";
const std::string daemon_page_path = source_dir + "/packaging/man/storecache.8";
const std::string main_path = source_dir + "/proxy/main.cpp";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The macro of a control line: ".SS \"[x]\"" -> "SS"; a text line -> "".
std::string macro_of(std::string_view line) {
  if (line.empty() || line[0] != '.') return {};
  std::size_t end = line.find_first_of(" \t", 1);
  return std::string(
      line.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
}

// The argument of a one-argument macro line, without surrounding quotes.
std::string argument_of(std::string_view line) {
  std::size_t start = line.find_first_of(" \t");
  if (start == std::string_view::npos) return {};
  std::string_view arg = line.substr(start);
  while (!arg.empty() && (arg.front() == ' ' || arg.front() == '\t'))
    arg.remove_prefix(1);
  while (!arg.empty() && (arg.back() == ' ' || arg.back() == '\t'))
    arg.remove_suffix(1);
  if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"')
    arg = arg.substr(1, arg.size() - 2);
  return std::string(arg);
}

bool is_key_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string at(std::size_t index) {
  return "storecache.toml.5:" + std::to_string(index + 1) + ": ";
}

// What is wrong with the page against schema; empty when nothing is.
std::vector<std::string> check_toml_page(const std::string& page,
                                         std::span<const table_schema> schema) {
  std::vector<std::string> problems;
  const auto lines = split_lines(page);

  struct entry {
    std::string key;
    std::size_t line;
    bool states_default = false;
  };
  std::map<std::string, std::vector<entry>> sections;  // header -> entries
  bool in_keys = false;
  bool seen_keys = false;
  std::string section;  // the current .SS title in KEYS
  entry* open = nullptr;
  auto close_entry = [&] {
    if (open != nullptr && !open->states_default)
      problems.push_back(
          at(open->line) + "key '" + open->key + "' in " + section +
          " does not state its default (a line beginning \"Default:\" or \"Required\")");
    open = nullptr;
  };

  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string m = macro_of(line);
    if (m == "SH") {
      close_entry();
      in_keys = argument_of(line) == "KEYS";
      seen_keys = seen_keys || in_keys;
      section.clear();
      continue;
    }
    if (!in_keys) continue;
    if (m == "SS") {
      close_entry();
      section = argument_of(line);
      auto known = std::find_if(schema.begin(), schema.end(),
                                [&](const auto& t) { return t.header == section; });
      if (known == schema.end())
        problems.push_back(at(i) + "section " + section +
                           " is not a table the config loader knows");
      if (sections.count(section) != 0)
        problems.push_back(at(i) + "section " + section + " appears twice");
      sections[section];
      continue;
    }
    if (m == "TP") {
      close_entry();
      if (section.empty()) {
        problems.push_back(at(i) + ".TP before the first .SS of KEYS");
        continue;
      }
      const std::string next = i + 1 < lines.size() ? lines[i + 1] : std::string();
      const std::string key = argument_of(next);
      if (macro_of(next) != "B" || !is_key_name(key)) {
        problems.push_back(at(i) + ".TP in " + section +
                           " is not followed by \".B key\" (the key alone)");
        continue;
      }
      auto& list = sections[section];
      if (std::any_of(list.begin(), list.end(), [&](const entry& e) { return e.key == key; }))
        problems.push_back(at(i + 1) + "key '" + key + "' is documented twice in " + section);
      list.push_back({key, i + 1});
      open = &list.back();
      ++i;  // the .B line
      continue;
    }
    if (m == "PP" || m == "P" || m == "LP") {
      close_entry();
      continue;
    }
    if (open != nullptr && (starts_with(line, "Default:") || starts_with(line, "Required")))
      open->states_default = true;
  }
  close_entry();
  if (!seen_keys) problems.push_back("storecache.toml.5: no .SH KEYS section");

  for (const auto& table : schema) {
    auto it = sections.find(std::string(table.header));
    if (it == sections.end()) {
      problems.push_back("storecache.toml.5: table " + std::string(table.header) +
                         " of the config loader has no .SS section in KEYS");
      continue;
    }
    for (std::string_view key : table.keys) {
      const auto& list = it->second;
      if (std::none_of(list.begin(), list.end(), [&](const entry& e) { return e.key == key; }))
        problems.push_back("storecache.toml.5: key '" + std::string(key) + "' of " +
                           std::string(table.header) + " is not documented in its section");
    }
    for (const auto& e : it->second)
      if (std::find(table.keys.begin(), table.keys.end(), e.key) == table.keys.end())
        problems.push_back(at(e.line) + "key '" + e.key + "' is documented in " +
                           std::string(table.header) +
                           ", but the config loader knows no such key there");
  }
  return problems;
}

// "--config", "--since", ... in text, in order, each once.
std::vector<std::string> long_options(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t p = text.find("--"); p != std::string_view::npos; p = text.find("--", p + 2)) {
    std::size_t end = p + 2;
    while (end < text.size() && ((text[end] >= 'a' && text[end] <= 'z') || text[end] == '-'))
      ++end;
    std::string opt(text.substr(p, end - p));
    if (opt.size() > 2 && std::find(out.begin(), out.end(), opt) == out.end()) out.push_back(opt);
  }
  return out;
}

// The usage text of main.cpp: the string literals from "usage =" to the ';' that ends it.
std::string usage_text(const std::string& main_source) {
  const std::size_t start = main_source.find("std::string_view usage =");
  REQUIRE(start != std::string::npos);
  const std::size_t end = main_source.find(';', start);
  REQUIRE(end != std::string::npos);
  return main_source.substr(start, end - start);
}

// Roff escapes that can sit inside an option name: \- (minus), \& (zero width), font changes.
std::string unescape(std::string s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      if (s[i + 1] == '-') {
        out += '-';
        ++i;
        continue;
      }
      if (s[i + 1] == '&') {
        ++i;
        continue;
      }
      if (s[i + 1] == 'f' && i + 2 < s.size()) {
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// What is wrong with the daemon's page against main.cpp's source; empty when nothing is.
std::vector<std::string> check_daemon_page(const std::string& page,
                                           const std::string& main_source) {
  std::vector<std::string> problems;
  const auto lines = split_lines(page);
  std::string tags;  // every entry tag, unescaped, one per line
  for (std::size_t i = 0; i + 1 < lines.size(); ++i)
    if (macro_of(lines[i]) == "TP") tags += unescape(lines[i + 1]) + "\n";

  const std::string usage = usage_text(main_source);
  const auto tagged = long_options(tags);
  for (const auto& opt : long_options(usage))
    if (std::find(tagged.begin(), tagged.end(), opt) == tagged.end())
      problems.push_back("storecache.8: option " + opt +
                         " of main.cpp's usage text is not the tag of an entry");
  if (usage.find("storecache report") != std::string::npos &&
      tags.find(".B report\n") == std::string::npos)
    problems.push_back("storecache.8: the command 'report' is not the tag of an entry");
  for (const auto& opt : tagged)
    if (main_source.find("\"" + opt + "\"") == std::string::npos)
      problems.push_back("storecache.8: option " + opt +
                         " is documented, but main.cpp accepts no such option");
  return problems;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems)
    s += p + "\n";
  return s;
}

bool mentions(const std::vector<std::string>& problems, std::string_view what) {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const std::string& p) { return p.find(what) != std::string::npos; });
}

// page with the entry of key (".TP", ".B key" and its lines up to the next .TP) removed.
std::string without_entry(const std::string& page, const std::string& key) {
  const std::size_t start = page.find(".TP\n.B " + key + "\n");
  REQUIRE(start != std::string::npos);
  const std::size_t end = page.find("\n.TP\n", start + 4);
  REQUIRE(end != std::string::npos);
  return page.substr(0, start) + page.substr(end + 1);
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("storecache.toml(5) documents every table and key of the config loader, and no other") {
  const auto schema = storecache::config::schema_tables();
  REQUIRE(schema.size() >= 14);
  const auto problems = check_toml_page(read_file(toml_page_path), schema);
  INFO(joined(problems));
  CHECK(problems.empty());
}

TEST_CASE("the storecache.toml(5) check fails when the page and the loader drift apart") {
  const auto schema = storecache::config::schema_tables();
  const std::string page = read_file(toml_page_path);
  REQUIRE(check_toml_page(page, schema).empty());

  SECTION("a key of the loader left out of its section") {
    auto p = check_toml_page(without_entry(page, "max_connections"), schema);
    INFO(joined(p));
    CHECK(mentions(p, "key 'max_connections' of [limits] is not documented"));
  }
  SECTION("a key the loader does not know") {
    auto p = check_toml_page(
        replaced(page, ".TP\n.B max_connections\n",
                 ".TP\n.B max_frobs\nInteger.\nDefault: 3.\n.TP\n.B max_connections\n"),
        schema);
    INFO(joined(p));
    CHECK(mentions(
        p, "key 'max_frobs' is documented in [limits], but the config loader knows no such key"));
  }
  SECTION("a key documented in another table's section") {
    auto p = check_toml_page(replaced(page, ".SS \"[admin]\"\n",
                                      ".SS \"[admin]\"\n.TP\n.B workers\nInteger.\nDefault: 0.\n"),
                             schema);
    INFO(joined(p));
    CHECK(mentions(p, "key 'workers' is documented in [admin]"));
  }
  SECTION("an entry without its default") {
    auto p = check_toml_page(replaced(page, "Default: 100.\nThe most request header fields",
                                      "The most request header fields"),
                             schema);
    INFO(joined(p));
    CHECK(mentions(p, "key 'max_header_count' in [limits] does not state its default"));
  }
  SECTION("a table without its section, and a section the loader does not know") {
    auto p = check_toml_page(
        replaced(page, ".SS \"[[site.access.rule]]\"", ".SS \"[[site.access.rules]]\""), schema);
    INFO(joined(p));
    CHECK(mentions(p, "table [[site.access.rule]] of the config loader has no .SS section"));
    CHECK(mentions(p, "section [[site.access.rules]] is not a table the config loader knows"));
  }
  SECTION("an entry that does not follow the convention") {
    auto p = check_toml_page(
        replaced(page, ".TP\n.B reset_penalty\n", ".TP\n.BR reset_penalty \" (seconds)\"\n"),
        schema);
    INFO(joined(p));
    CHECK(mentions(p, "is not followed by \".B key\""));
    CHECK(mentions(p, "key 'reset_penalty' of [limits] is not documented"));
  }
}

TEST_CASE("storecache(8) documents every command-line option of main.cpp, and no other") {
  const std::string main_source = read_file(main_path);
  const auto usage_options = long_options(usage_text(main_source));
  // The usage text is what this check reads: it must still be where the check looks.
  for (const char* opt : {"--config", "--check-config", "--cache-dir", "--since", "--json",
                          "--version", "--log-level"})
    CHECK(std::find(usage_options.begin(), usage_options.end(), opt) != usage_options.end());
  const auto problems = check_daemon_page(read_file(daemon_page_path), main_source);
  INFO(joined(problems));
  CHECK(problems.empty());
}

TEST_CASE("the storecache(8) check fails when the page and main.cpp drift apart") {
  const std::string main_source = read_file(main_path);
  const std::string page = read_file(daemon_page_path);
  REQUIRE(check_daemon_page(page, main_source).empty());

  SECTION("an option of the usage text left out of the page") {
    auto p = check_daemon_page(replaced(page, ".TP\n.B \\-\\-json\n", ".PP\n.B \\-\\-json\n"),
                               main_source);
    INFO(joined(p));
    CHECK(mentions(p, "option --json of main.cpp's usage text"));
  }
  SECTION("an option main.cpp does not accept") {
    auto p = check_daemon_page(
        replaced(page, ".TP\n.B \\-\\-json\n", ".TP\n.B \\-\\-json\n.TP\n.B \\-\\-daemonize\n"),
        main_source);
    INFO(joined(p));
    CHECK(mentions(p, "option --daemonize is documented, but main.cpp accepts no such option"));
  }
  SECTION("a new option in main.cpp's usage text") {
    auto p = check_daemon_page(
        page,
        replaced(main_source, "       storecache --version\\n\"",
                 "       storecache --version\\n\"\n    \"       storecache --purge URL\\n\""));
    INFO(joined(p));
    CHECK(mentions(p, "option --purge of main.cpp's usage text"));
  }
  SECTION("the report command left out") {
    auto p = check_daemon_page(replaced(page, ".TP\n.B report\n", ".PP\n.B report\n"), main_source);
    INFO(joined(p));
    CHECK(mentions(p, "the command 'report'"));
  }
}
