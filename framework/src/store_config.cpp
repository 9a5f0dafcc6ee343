// The store registry behind open_store(): built-in file and memory stores plus openers
// registered by optional libraries.
#include "cairn/store_config.hpp"

#include <map>
#include <mutex>

#include "cairn/file_journal.hpp"
#include "cairn/memory_journal.hpp"

namespace cairn {
namespace {

struct registry {
  std::mutex mutex;
  std::map<std::string, store_opener> openers;
};

registry& stores() {
  static registry r;
  return r;
}

expected<opened_store> open_file_store(const store_config& c) {
  auto sync = parse_sync_policy(c.file_sync);
  if (!sync) return std::move(sync).error();
  file_journal_options options;
  options.sync = *sync;
  auto events = open_file_journal(c.data + "/events", options);
  if (!events) return std::move(events).error();
  auto snapshots = open_file_snapshot_store(c.data + "/snapshots");
  if (!snapshots) return std::move(snapshots).error();
  return opened_store{std::move(*events), std::move(*snapshots)};
}

expected<opened_store> open_memory_store(const store_config&) {
  return opened_store{make_memory_journal(), make_memory_snapshot_store()};
}

} // namespace

void register_store(const std::string& kind, store_opener open) {
  auto& r = stores();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.openers[kind] = std::move(open);
}

std::vector<std::string> store_kinds() {
  std::vector<std::string> kinds{"file", "memory"};
  auto& r = stores();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& kv : r.openers)
    if (kv.first != "file" && kv.first != "memory") kinds.push_back(kv.first);
  return kinds;
}

expected<opened_store> open_store(const store_config& config) {
  store_opener open;
  {
    auto& r = stores();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (auto it = r.openers.find(config.kind); it != r.openers.end()) open = it->second;
  }
  if (open) return open(config);
  if (config.kind == "file") return open_file_store(config);
  if (config.kind == "memory") return open_memory_store(config);
  if (config.kind == "postgres")
    return error{errc::unavailable,
                 "the postgres store is not available in this program: link cairn::postgres "
                 "and call cairn::register_postgres_store() before opening the store"};
  std::string known;
  for (auto& k : store_kinds()) known += (known.empty() ? "" : ", ") + k;
  return error{errc::invalid_argument,
               "unknown store \"" + config.kind + "\" ([cairn] store): use one of " + known};
}

} // namespace cairn
