// Crash safety of the Kafka connector with real processes: a child publishing (or
// consuming) against a mock cluster in this process is SIGKILLed at random moments
// and restarted; afterwards every event is on the topic in order per stream with no
// gap, and every record was handled at least once.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <set>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairn/file_journal.hpp>
#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_publisher.hpp>

#include "kafka_test_support.hpp"

namespace fs = std::filesystem;
using namespace kafka_test;

namespace {

struct child {
  pid_t pid = -1;
  FILE* out = nullptr; // the child's stdout
};

child start(const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(CAIRN_KAFKA_AGENT));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(CAIRN_KAFKA_AGENT, argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out = fdopen(fds[0], "r");
  return c;
}

/// Waits for the child's exit; returns its exit code, or -signal.
int finish(child& c) {
  int status = 0;
  REQUIRE(waitpid(c.pid, &status, 0) == c.pid);
  fclose(c.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("cairn-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

} // namespace

TEST_CASE("a publisher killed 4 times resumes from its checkpoint: every event, in order per stream") {
  auto cluster = cairn::kafka_mock_cluster::start(3);
  REQUIRE(cluster);
  REQUIRE((*cluster)->create_topic("account", 4, 3));
  auto bootstrap = (*cluster)->bootstrap();
  auto dir = temp_dir("kafka-publish-crash");
  const uint64_t events = 12000;
  std::mt19937 rng{std::random_device{}()};
  std::vector<uint64_t> checkpoints;
  for (int round = 0; round < 4; ++round) {
    auto c = start({"publish", dir.string(), bootstrap, std::to_string(events), "16"});
    std::this_thread::sleep_for(std::chrono::milliseconds{200 + rng() % 400});
    kill(c.pid, SIGKILL);
    int code = finish(c);
    INFO("round " << round);
    CHECK(code == -SIGKILL); // it was still publishing
    auto snaps = cairn::open_file_snapshot_store((dir / "snapshots").string());
    REQUIRE(snaps);
    auto saved = cairn::kafka_publisher::stored_checkpoint(**snaps, "crash");
    REQUIRE(saved);
    checkpoints.push_back(*saved);
  }
  auto c = start({"publish", dir.string(), bootstrap, std::to_string(events), "16"});
  REQUIRE(finish(c) == 0);
  INFO("checkpoints at the kills: " << checkpoints[0] << " " << checkpoints[1] << " "
                                    << checkpoints[2] << " " << checkpoints[3]);

  cairn::file_journal_options ro;
  ro.read_only = true;
  auto store = cairn::open_file_journal((dir / "events").string(), ro);
  REQUIRE(store);
  REQUIRE((*store)->head_position() == events);
  auto records = read_topic(bootstrap, "account", events, std::chrono::seconds{60});
  size_t repeats = 0;
  CHECK(check_streams(records, stream_versions(**store), &repeats) == "");
  std::set<uint64_t> positions;
  for (auto& r : records) positions.insert(header_number(r, "cairn.position"));
  CHECK(positions.size() == events);
  CHECK(*positions.begin() == 1);
  CHECK(*positions.rbegin() == events);
  WARN("published " << records.size() << " messages for " << events << " events (" << repeats
                    << " repeats after the kills)");
  fs::remove_all(dir);
}

TEST_CASE("a consumer killed 3 times mid-stream loses no record (at least once)") {
  auto cluster = cairn::kafka_mock_cluster::start(3);
  REQUIRE(cluster);
  REQUIRE((*cluster)->create_topic("payments", 3, 3));
  auto bootstrap = (*cluster)->bootstrap();
  const size_t n = 1500;
  std::vector<std::pair<std::string, std::string>> records;
  for (size_t i = 0; i < n; ++i) records.emplace_back("p" + std::to_string(i % 11), std::to_string(i));
  REQUIRE(produce(bootstrap, "payments", records) == 0);
  auto dir = temp_dir("kafka-consume-crash");
  std::mt19937 rng{std::random_device{}()};
  for (int round = 0; round < 3; ++round) {
    auto c = start({"consume", dir.string(), bootstrap, "payments", std::to_string(n)});
    // Kill it once it has handled a random number of records in this run.
    auto target = 50 + rng() % 300;
    char line[64];
    uint64_t handled = 0;
    while (handled < target && std::fgets(line, sizeof line, c.out))
      handled = std::strtoull(line + 8, nullptr, 10);
    kill(c.pid, SIGKILL);
    INFO("round " << round << " handled " << handled);
    CHECK(finish(c) == -SIGKILL);
  }
  auto c = start({"consume", dir.string(), bootstrap, "payments", std::to_string(n)});
  REQUIRE(finish(c) == 0);

  cairn::file_journal_options ro;
  ro.read_only = true;
  auto store = cairn::open_file_journal((dir / "events").string(), ro);
  REQUIRE(store);
  auto streams = (*store)->list_streams();
  REQUIRE(streams);
  std::set<std::string> values;
  for (auto& s : *streams) {
    auto events = (*store)->read_stream(s, 1, 1);
    REQUIRE(events);
    auto d = cairn::variant_codec<bank::account::event_type>::decode(events->front());
    REQUIRE(d);
    values.insert(std::to_string(std::get<bank::deposited>(*d).amount));
  }
  CHECK(streams->size() == n);
  CHECK(values.size() == n);
  WARN("handled " << (*store)->head_position() << " times for " << n
                  << " records (the repeats are what was handled but not yet committed at a kill)");
  fs::remove_all(dir);
}
