// kill -9 at random moments while a child process writes objects: after reopening, every
// object is either complete and byte-exact or absent, and no temporary or orphan file is left.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "store_test_util.hpp"

using namespace store_test;

namespace {

constexpr int rounds = 8;
constexpr int keys_per_round = 40;

std::string key_of(int round, int i) {
  return "https://crash/" + std::to_string(round) + "/" + std::to_string(i);
}
// Sizes alternate between one large multi-chunk body and small (inline and file) ones.
std::size_t size_of(int i) {
  switch (i % 4) {
    case 0:
      return 6 * 1024 * 1024 + 123;
    case 1:
      return 700;
    case 2:
      return 40000;
    default:
      return 1024 * 1024;
  }
}
unsigned seed_of(int round, int i) {
  return static_cast<unsigned>(round * 1000 + i + 1);
}

// The child: writes the round's objects in 16 KiB chunks until it is killed; batched, it
// commits them batch_size at a time (store::commit_batch: one syncfs, one transaction).
// After each commit it writes one byte to `progress`, so that the parent can aim a kill after
// the first commit: on a slow build (ASan) a batch of 8 can take longer than any fixed delay.
constexpr int batch_size = 8;
void report_progress(int progress) {
  const char c = 1;
  [[maybe_unused]] const auto n = ::write(progress, &c, 1);
}
[[noreturn]] void child(const store_options& opts, int round, bool batched, int progress) {
  auto s = store::open(opts);
  if (!s) ::_exit(2);
  std::vector<pending_commit> batch;
  for (int i = 0; i < keys_per_round; ++i) {
    const std::string body = make_body(size_of(i), seed_of(round, i));
    if (!batched) {
      if (insert(*s, key_of(round, i), body, {}, 16 * 1024)) ::_exit(3);
      report_progress(progress);
      continue;
    }
    auto h = s->begin_insert(key_of(round, i), {}, body.size());
    if (!h) ::_exit(4);
    for (std::size_t off = 0; off < body.size(); off += 16 * 1024)
      if (h->append(std::string_view(body).substr(off, 16 * 1024))) ::_exit(5);
    batch.push_back(pending_commit{std::move(*h), make_head(), {}});
    if (batch.size() == batch_size || i + 1 == keys_per_round) {
      s->commit_batch(batch);
      for (const auto& p : batch)
        if (p.result) ::_exit(6);
      batch.clear();
      report_progress(progress);
    }
  }
  ::_exit(0);
}

void kill_during_writes(bool batched) {
  temp_dir dir(batched ? "crash-batch" : "crash");
  auto opts = small_options(dir.path);
  opts.max_size = 40ull << 20;  // small enough that the child also evicts
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(5, 250);
  int hits = 0;
  int killed_mid_round = 0;
  for (int round = 0; round < rounds; ++round) {
    int progress[2];
    REQUIRE(::pipe(progress) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(progress[0]);
      child(opts, round, batched, progress[1]);
    }
    ::close(progress[1]);
    // Odd rounds aim from the start (often before the first commit); even rounds from the
    // first commit, so that some objects are complete however slow the build is.
    if (round % 2 == 0) {
      pollfd p{progress[0], POLLIN, 0};
      REQUIRE(::poll(&p, 1, 60'000) == 1);
    }
    ::usleep(static_cast<useconds_t>(delay_ms(rng)) * 1000);
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) ++killed_mid_round;
    if (WIFEXITED(status)) REQUIRE(WEXITSTATUS(status) == 0);
    ::close(progress[0]);

    auto s = open_store(opts);
    INFO("round " << round);
    std::size_t file_hits = 0;
    for (int r = 0; r <= round; ++r) {
      for (int i = 0; i < keys_per_round; ++i) {
        auto l = s.lookup(key_of(r, i)).value();
        REQUIRE(l.status != lookup_status::corrupt);
        if (l.status == lookup_status::miss) continue;
        ++hits;
        if (!l.body.is_inline()) ++file_hits;
        REQUIRE(l.meta.body_size == size_of(i));
        const auto got = read_all(l.body, 1 << 20);
        REQUIRE(got.has_value());
        REQUIRE(*got == make_body(size_of(i), seed_of(r, i)));
      }
    }
    CHECK(count_files(dir.path / "objects" / "tmp") == 0);
    CHECK(count_files(dir.path / "objects") == file_hits);  // no orphans
    CHECK(s.counters().bytes <= opts.max_size);
  }
  CHECK(hits > 0);
  CHECK(killed_mid_round > rounds / 2);  // the kills really landed mid-write
}

}  // namespace

TEST_CASE("store: SIGKILL during writes leaves only complete objects", "[store][crash]") {
  kill_during_writes(false);
}

TEST_CASE("store: SIGKILL during batched commits leaves only complete objects",
          "[store][crash][batch]") {
  kill_during_writes(true);
}
