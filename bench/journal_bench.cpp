// Benchmarks the embedded file store, next to the disk's own limit:
//  1. durable appends/s through the journal actor from N concurrent appenders
//     (one 100-byte event per append, sync "always"), and the disk's write +
//     fdatasync limit for the batch sizes the journal actually wrote;
//  2. recovery of one aggregate with 100,000 events, with and without a snapshot,
//     and its parts without actors: read_stream, read_stream_all, read + decode + evolve;
//  3. whole-store replay (read_all) from the page cache.
// Prints medians of --runs runs, also as one "RESULT {json}" line for bench/run.
// Usage: journal_bench [--dir DIR] [--appenders N] [--seconds S] [--runs R] [--events E]
//   [--events-per-append M] [--appends 0|1] [--recovery 0|1]
//   [--store file|memory] [--sync always|interval|never] [--disk-probe-seconds S]
//   [--scheduler stealing|sharing|...] (CAF's scheduler.policy; default: the node's)
//   [--appender actor|callback] (appenders are actors, as aggregates are, or callbacks)
// (--appends 0 skips part 1, e.g. to profile the reads alone; --recovery 0 skips 2 and 3).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <cairn/file_journal.hpp>
#include <cairn/journal_wrapper.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/account.hpp"
#include "append_inbox.hpp"
#include "message_types.hpp"
#include "spawn.hpp"
#include "bench_support.hpp"

namespace fs = std::filesystem;
using namespace cairn;
using namespace cairn::bench; // clock_type, median, counting_journal, disk_syncs_per_s, ...

namespace {

struct settings {
  std::string dir = "bench-data";
  size_t appenders = 1000;
  double seconds = 5;
  int runs = 3;
  size_t recovery_events = 100'000;
  size_t events_per_append = 1;
  bool appends = true;
  bool recovery = true;
  std::string store = "file"; // "memory": the same path with no I/O (the CPU ceiling)
  sync_policy sync = sync_policy::always;
  double disk_probe_seconds = 2;
  std::string scheduler; // CAF's scheduler.policy; empty: the node's default
  std::string appender_kind = "actor"; // or "callback" (not an actor: see callback_appender)
};

struct shared_run {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0};
  std::atomic<size_t> finished{0};
};

/// `n` events of 100 bytes, as an aggregate's decide would make them.
std::vector<event_data> bench_events(size_t n) {
  std::vector<event_data> events;
  events.reserve(n);
  for (size_t i = 0; i < n; ++i) events.push_back(event_data{"deposited", 1, {}, bytes(100, 0x5a)});
  return events;
}

struct appender_state {
  size_t events_per_append = 1;
  std::shared_ptr<append_inbox> journal;
  stream_id stream;
  uint64_t version = 0;
  std::shared_ptr<shared_run> run;
};

using appender_t = caf::stateful_actor<appender_state>;

void append_next(appender_t* self) {
  auto& st = self->state;
  if (st.run->stop) {
    ++st.run->finished;
    return self->quit();
  }
  auto events = bench_events(st.events_per_append);
  // As aggregates append: through the journal's inbox, answered by (appended, tag, ...).
  st.journal->submit(append_request{st.stream, st.version, std::move(events)},
                     caf::actor_cast<caf::actor>(self), 0);
}

caf::behavior appender(appender_t* self, std::shared_ptr<append_inbox> journal, size_t index,
                       std::shared_ptr<shared_run> run, size_t events_per_append) {
  self->state.events_per_append = events_per_append;
  self->state.journal = std::move(journal);
  self->state.stream = stream_id{"bench", std::to_string(index)};
  self->state.run = std::move(run);
  append_next(self);
  return {
    [self](appended_atom, uint64_t, const append_result& r) {
      self->state.version = r.last_version;
      self->state.run->acked += self->state.events_per_append;
      append_next(self);
    },
    [self](appended_atom, uint64_t, const caf::error&) {
      ++self->state.run->finished;
      self->quit();
    },
  };
}

/// An appender that is not an actor: its completion (on the journal's writer thread)
/// submits its next append at once. What the journal itself can do, without the cost
/// of waking an actor per answer.
struct callback_appender {
  std::shared_ptr<append_inbox> journal;
  stream_id stream;
  uint64_t version = 0;
  size_t events_per_append = 1;
  std::shared_ptr<shared_run> run;

  void append_next() {
    if (run->stop) {
      ++run->finished;
      return;
    }
    journal->submit(append_request{stream, version, bench_events(events_per_append)}, done);
  }

  // Made once: the appender outlives its appends (run_appends waits for every one).
  append_inbox::completion done = [this](expected<append_result> r) {
    if (!r) {
      ++run->finished;
      return;
    }
    version = r->last_version;
    run->acked += events_per_append;
    append_next();
  };
};

struct append_figures {
  double events_per_s;
  double cpu_us_per_event; ///< the whole process's CPU time over the window, per acked event
  double events_per_write;
  double bytes_per_write;
};

append_figures run_appends(const settings& s, const fs::path& dir) {
  fs::remove_all(dir);
  auto inner = open_bench_store(s.store, dir, s.sync);
  auto counting = std::make_shared<counting_journal>(inner);
  node_config cfg;
  if (!s.scheduler.empty()) cfg.set("scheduler.policy", caf::atom_from_string(s.scheduler));
  caf::actor_system sys{cfg};
  auto journal = spawn_journal(sys, counting);
  auto run = std::make_shared<shared_run>();
  std::vector<std::shared_ptr<callback_appender>> callbacks;
  for (size_t i = 0; i < s.appenders; ++i) {
    if (s.appender_kind == "actor") {
      sys.spawn(appender, journal.inbox, i, run, s.events_per_append);
    } else {
      auto a = std::make_shared<callback_appender>();
      a->journal = journal.inbox;
      a->stream = stream_id{"bench", std::to_string(i)};
      a->events_per_append = s.events_per_append;
      a->run = run;
      callbacks.push_back(a);
    }
  }
  for (auto& a : callbacks) a->append_next();
  // Warm up, then measure a window.
  std::this_thread::sleep_for(std::chrono::milliseconds{500});
  // Counters only, read at once: nothing in the window but the appends.
  auto acked0 = run->acked.load();
  auto writes0 = counting->durable_writes();
  auto events0 = counting->events.load();
  auto bytes0 = counters_of_file_journal(*inner);
  auto cpu0 = cpu_seconds();
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
  auto elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto acked = run->acked.load() - acked0;
  auto cpu = cpu_seconds() - cpu0;
  auto writes = counting->durable_writes() - writes0;
  auto events = counting->events.load() - events0;
  auto bytes1 = counters_of_file_journal(*inner);
  run->stop = true;
  while (run->finished < s.appenders) std::this_thread::sleep_for(std::chrono::milliseconds{5});
  caf::anon_send_exit(journal.actor, caf::exit_reason::user_shutdown);
  double bytes_per_event = bytes0 && bytes1 && events > 0
                             ? double(bytes1->bytes - bytes0->bytes) / double(events)
                             : 200.0; // the memory store: about a file record's size
  double per_write = writes ? double(events) / double(writes) : 0;
  return {double(acked) / elapsed, acked ? 1e6 * cpu / double(acked) : 0, per_write,
          per_write * bytes_per_event};
}

/// Seconds until the first command to an aggregate with `events` stored events
/// completes on a fresh node (recovery included; the node's start-up is not). The
/// command is a deposit, so this includes its durable append (one fdatasync), unless
/// `no_op`: then it opens the already open account, which decides no events and
/// appends nothing, so the time is the aggregate's spawn and recovery.
double recovery_seconds(const fs::path& dir, bool with_snapshot, bool no_op = false) {
  auto store = open_file_journal((dir / "events").string());
  auto snaps = open_file_snapshot_store((dir / "snapshots").string());
  if (!store || !snaps) std::exit(1);
  node_config cfg;
  cfg.options.log_level = "warn";
  cfg.options.aggregates.snapshot_every = with_snapshot ? 1'000'000'000 : 0;
  node n{cfg, *store, with_snapshot ? *snaps : nullptr};
  (void)n.register_aggregate<bank::account>();
  auto t0 = clock_type::now();
  auto r = no_op ? n.execute<bank::account>("big", bank::open{"o"})
                 : n.execute<bank::account>("big", bank::deposit{1});
  auto elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (!r) std::fprintf(stderr, "recovery command failed: %s\n", r.error().describe().c_str());
  else if (no_op && r->events != 0) std::fprintf(stderr, "the no-op command appended\n");
  return elapsed;
}

void prepare_recovery_store(const fs::path& dir, size_t events) {
  fs::remove_all(dir);
  file_journal_options fast;
  fast.sync = sync_policy::never;
  auto store = open_file_journal((dir / "events").string(), fast);
  if (!store) std::exit(1);
  stream_id big{"account", "big"};
  (void)(*store)->append_one({big, 0, {variant_codec<bank::account::event_type>::encode(bank::opened{"o"})}});
  for (size_t done = 0; done < events; done += 1000) {
    std::vector<event_data> batch;
    for (size_t i = 0; i < 1000; ++i)
      batch.push_back(variant_codec<bank::account::event_type>::encode(bank::deposited{1}));
    (void)(*store)->append_one({big, expected_version::any, std::move(batch)});
  }
  // A snapshot at the head, as a node with snapshots would have left it.
  auto snaps = open_file_snapshot_store((dir / "snapshots").string());
  auto model = make_aggregate_model<bank::account>();
  auto inst = model->make_instance();
  auto all = read_stream_all(**store, big);
  for (auto& e : *all) (void)inst->replay(e);
  (void)(*snaps)->save(*inst->take_snapshot(big));
}

/// The parts of a recovery without the actors, each on a freshly opened store: one
/// read_stream of the whole stream; read_stream_all; and read + decode + evolve as the
/// aggregate actor recovers (read_stream in chunks of 512, each replayed in turn).
struct recovery_parts {
  double read_stream_seconds;
  double read_stream_all_seconds;
  double replay_seconds;
};

recovery_parts recovery_part_seconds(const fs::path& dir, size_t expected_events) {
  stream_id big{"account", "big"};
  auto timed = [&](auto&& body) {
    auto store = open_file_journal((dir / "events").string());
    if (!store) std::exit(1);
    auto t0 = clock_type::now();
    size_t n = body(**store);
    double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
    // Each recovery_seconds() run has appended one more deposit.
    if (n < expected_events) {
      std::fprintf(stderr, "recovery parts: %zu events, expected %zu\n", n, expected_events);
      std::exit(1);
    }
    return elapsed;
  };
  recovery_parts out{};
  out.read_stream_seconds = timed([&](journal& j) {
    auto all = j.read_stream(big, 1, std::numeric_limits<size_t>::max());
    return all ? all->size() : 0;
  });
  out.read_stream_all_seconds = timed([&](journal& j) {
    auto all = read_stream_all(j, big);
    return all ? all->size() : 0;
  });
  out.replay_seconds = timed([&](journal& j) -> size_t {
    constexpr size_t chunk = 512; // as actors/src/aggregate_actor.cpp
    auto inst = make_aggregate_model<bank::account>()->make_instance();
    for (uint64_t next = 1;;) {
      auto events = j.read_stream(big, next, chunk);
      if (!events) return 0;
      for (auto& e : *events)
        if (!inst->replay(e)) return 0;
      if (events->size() < chunk) return static_cast<size_t>(inst->version());
      next = events->back().version + 1;
    }
  });
  return out;
}

double replay_events_per_s(const fs::path& dir) {
  file_journal_options reader;
  reader.read_only = true;
  auto store = open_file_journal((dir / "events").string(), reader);
  if (!store) std::exit(1);
  uint64_t n = 0, pos = 1;
  auto t0 = clock_type::now();
  for (;;) {
    auto chunk = (*store)->read_all(pos, 65536);
    if (!chunk || chunk->empty()) break;
    n += chunk->size();
    pos = chunk->back().position + 1;
  }
  return double(n) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") s.dir = v;
    else if (k == "--appenders") s.appenders = std::stoul(v);
    else if (k == "--seconds") s.seconds = std::stod(v);
    else if (k == "--runs") s.runs = std::stoi(v);
    else if (k == "--events") s.recovery_events = std::stoul(v);
    else if (k == "--events-per-append") s.events_per_append = std::stoul(v);
    else if (k == "--appends") s.appends = std::stoi(v) != 0;
    else if (k == "--recovery") s.recovery = std::stoi(v) != 0;
    else if (k == "--store" && (v == "file" || v == "memory")) s.store = v;
    else if (k == "--sync" && parse_sync_policy(v)) s.sync = *parse_sync_policy(v);
    else if (k == "--disk-probe-seconds") s.disk_probe_seconds = std::stod(v);
    else if (k == "--scheduler") s.scheduler = v;
    else if (k == "--appender" && (v == "actor" || v == "callback")) s.appender_kind = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  fs::path root{s.dir};
  fs::create_directories(root);
  std::printf("journal_bench: %u cores, %zu %s appenders x %zu event(s) of 100 bytes per append, "
              "%d runs of %.1f s, %s store, sync %s\n",
              std::thread::hardware_concurrency(), s.appenders, s.appender_kind.c_str(),
              s.events_per_append, s.runs,
              s.seconds, s.store.c_str(),
              s.sync == sync_policy::always ? "always" : s.sync == sync_policy::never ? "never"
                                                                                      : "interval");

  std::vector<double> rates, per_write, limits, ratios, cpu;
  for (int r = 0; s.appends && r < s.runs; ++r) {
    auto f = run_appends(s, root / "appends");
    auto syncs =
      disk_syncs_per_s(root, static_cast<size_t>(f.bytes_per_write), s.disk_probe_seconds);
    double limit = syncs * f.events_per_write;
    rates.push_back(f.events_per_s);
    per_write.push_back(f.events_per_write);
    limits.push_back(limit);
    ratios.push_back(limit > 0 ? f.events_per_s / limit : 0);
    cpu.push_back(f.cpu_us_per_event);
    std::printf("  run %d: %.0f durable events/s, %.2f us CPU per event, %.0f events (%.0f bytes) "
                "per write; disk limit %.0f events/s (%.0f syncs/s)\n",
                r + 1, f.events_per_s, f.cpu_us_per_event, f.events_per_write, f.bytes_per_write,
                limit, syncs);
  }
  if (s.appends) {
    std::printf("durable appends through the journal actor: median %.0f events/s\n",
                median(rates));
    std::printf("disk write+fdatasync limit at the same batch size: median %.0f events/s\n",
                median(limits));
    std::printf("journal / disk limit: median %.0f%%\n", 100 * median(ratios));
    std::printf("CPU per durable event (all threads): median %.2f us\n", median(cpu));
  }

  nlohmann::json out{
    {"bench", "journal"},
    {"runs", s.runs},
    {"appender", s.appender_kind},
    {"peak_rss_bytes", peak_rss_bytes()},
  };
  if (s.recovery) {
    auto rec = root / "recovery";
    prepare_recovery_store(rec, s.recovery_events);
    std::vector<double> full, full_no_op, snap, replay, read_one, read_all_of, decode;
    for (int r = 0; r < s.runs; ++r) {
      full.push_back(recovery_seconds(rec, false));
      full_no_op.push_back(recovery_seconds(rec, false, true));
      snap.push_back(recovery_seconds(rec, true));
      replay.push_back(replay_events_per_s(rec));
      auto parts = recovery_part_seconds(rec, s.recovery_events + 1);
      read_one.push_back(parts.read_stream_seconds);
      read_all_of.push_back(parts.read_stream_all_seconds);
      decode.push_back(parts.replay_seconds);
    }
    auto n = double(s.recovery_events + 1);
    std::printf("recover 1 aggregate with %zu events, no snapshot: median %.1f ms (%.0f events/s)\n",
                s.recovery_events, 1e3 * median(full), n / median(full));
    std::printf("recover 1 aggregate with %zu events, no snapshot, first command appends "
                "nothing: median %.1f ms (%.0f events/s)\n",
                s.recovery_events, 1e3 * median(full_no_op), n / median(full_no_op));
    std::printf("recover 1 aggregate with %zu events, from a snapshot: median %.1f ms "
                "(the first command's fixed cost, its durable append included)\n",
                s.recovery_events, 1e3 * median(snap));
    std::printf("  its parts without actors: one read_stream of the whole stream: median %.1f ms "
                "(%.0f events/s)\n",
                1e3 * median(read_one), n / median(read_one));
    std::printf("  read_stream_all: median %.1f ms (%.0f events/s)\n", 1e3 * median(read_all_of),
                n / median(read_all_of));
    std::printf("  read + decode + evolve in chunks of 512, as the aggregate actor: median %.1f ms "
                "(%.0f events/s)\n",
                1e3 * median(decode), n / median(decode));
    std::printf("whole-store replay (read_all, page cache): median %.0f events/s\n", median(replay));
    out["recovery_events"] = s.recovery_events;
    out["recovery_ms"] = 1e3 * median(full);
    out["recovery_no_op_ms"] = 1e3 * median(full_no_op);
    out["recovery_snapshot_ms"] = 1e3 * median(snap);
    out["recovery_events_per_s"] = n / median(full);
    out["replay_events_per_s"] = median(replay);
    out["peak_rss_bytes"] = peak_rss_bytes();
  }
  if (s.appends) {
    out["appenders"] = s.appenders;
    out["events_per_append"] = s.events_per_append;
    out["append_events_per_s"] = median(rates);
    out["disk_limit_events_per_s"] = median(limits);
    out["ratio_to_disk"] = median(ratios);
    out["events_per_write"] = median(per_write);
    out["cpu_us_per_event"] = median(cpu);
  }
  print_result(out);
  fs::remove_all(root);
  return 0;
}
