// The [log] table: level, access_log target (stderr, off, an absolute file path whose
// directory exists and is writable) and access_log_query, each error pinned to its line.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "config/config.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;
namespace fs = std::filesystem;

TEST_CASE("[log]: defaults", "[config]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->log.level == log_level::info);
  CHECK(r.cfg->log.access_log == access_log_target::stderr_journal);
  CHECK(r.cfg->log.access_log_file.empty());
  CHECK(r.cfg->log.query == access_log_query::redact);
}

TEST_CASE("[log]: every key is read", "[config]") {
  temp_dir dir;
  const std::string file = (fs::absolute(dir.path()) / "logs/../access.log").string();
  const std::string text = std::string(base) + "[log]\nlevel = \"debug\"\naccess_log = \"" + file +
                           "\"\naccess_log_query = \"keep\"\n";
  auto r = parse(text, "log.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->log.level == log_level::debug);
  CHECK(r.cfg->log.access_log == access_log_target::file);
  CHECK(r.cfg->log.access_log_file == fs::absolute(dir.path()) / "access.log");  // normalized
  CHECK(r.cfg->log.query == access_log_query::keep);
  CHECK_FALSE(fs::exists(r.cfg->log.access_log_file));  // checking does not create it

  for (auto [word, level] : {std::pair{"err", log_level::err},
                             {"warning", log_level::warning},
                             {"notice", log_level::notice},
                             {"info", log_level::info}}) {
    auto l = parse(std::string(base) + "[log]\nlevel = \"" + word + "\"\n", "l.toml", dir.path());
    REQUIRE(l.ok());
    CHECK(l.cfg->log.level == level);
  }
  auto off = parse(std::string(base) + "[log]\naccess_log = \"off\"\naccess_log_query = \"drop\"\n",
                   "off.toml", dir.path());
  REQUIRE(off.ok());
  CHECK(off.cfg->log.access_log == access_log_target::off);
  CHECK(off.cfg->log.query == access_log_query::drop);
  auto err = parse(std::string(base) + "[log]\naccess_log = \"stderr\"\n", "e.toml", dir.path());
  REQUIRE(err.ok());
  CHECK(err.cfg->log.access_log == access_log_target::stderr_journal);
}

TEST_CASE("[log]: bad values name their key and line", "[config]") {
  temp_dir dir;
  const std::string b(base);
  const std::string abs_dir = fs::absolute(dir.path()).string();
  dir.write("existing.log", "");
  struct bad {
    std::string name, text, key, says;
  };
  std::vector<bad> cases{
      {"unknown level", "level = \"verbose\"", "log.level",
       "'verbose' is not one of \"err\", \"warning\", \"notice\", \"info\", \"debug\""},
      {"level not a string", "level = 6", "log.level", "expected a string"},
      {"relative path", "access_log = \"logs/access.log\"", "log.access_log",
       "neither \"stderr\", \"off\" nor an absolute file path"},
      {"journal is not a target", "access_log = \"journal\"", "log.access_log",
       "neither \"stderr\", \"off\""},
      {"empty", "access_log = \"\"", "log.access_log", "neither"},
      {"a directory path", "access_log = \"" + abs_dir + "/\"", "log.access_log", "neither"},
      {"missing directory", "access_log = \"" + abs_dir + "/nope/access.log\"", "log.access_log",
       "directory '" + abs_dir + "/nope' does not exist"},
      {"is a directory", "access_log = \"" + abs_dir + "\"", "log.access_log",
       "is a directory, not a file"},
      {"query word", "access_log_query = \"hide\"", "log.access_log_query",
       "'hide' is not one of \"redact\", \"drop\", \"keep\""},
      {"unknown key", "acces_log = \"off\"", "log.acces_log", "did you mean 'access_log'?"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      // [log] after [[site]]'s keys: line 8 is the header, line 9 the key.
      const std::string text = b + "[log]\n" + c.text + "\n";
      INFO(text);
      check_single_error(parse(text, "bad.toml", dir.path()), c.key, 9, c.says);
    }
  }
  SECTION("a log key in another table") {
    check_single_error(parse(b + "[cache]\naccess_log = \"off\"\n", "bad.toml", dir.path()),
                       "cache.access_log", 9, "belongs in [log]");
  }
  SECTION("an unwritable directory") {
    if (::geteuid() == 0) {
      WARN("root can write anywhere: skipped");
      return;
    }
    fs::create_directories(dir.path() / "ro");
    fs::permissions(dir.path() / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    auto r = parse(b + "[log]\naccess_log = \"" + abs_dir + "/ro/access.log\"\n", "bad.toml",
                   dir.path());
    fs::permissions(dir.path() / "ro", fs::perms::owner_all);
    check_single_error(r, "log.access_log", 9, "is not writable");
  }
  SECTION("an existing file is fine") {
    auto r =
        parse(b + "[log]\naccess_log = \"" + abs_dir + "/existing.log\"\n", "ok.toml", dir.path());
    INFO(all_errors(r));
    CHECK(r.ok());
  }
}
