// file_journal: the public entry points: option checks, open_file_journal and refresh.
#include "cairn/file_journal.hpp"

#include <filesystem>

#include "file_format.hpp"
#include "file_journal_impl.hpp"

namespace cairn {

static_assert(file_journal_max_event_bytes == detail::max_record_bytes);

uint64_t file_journal_event_bytes(const stream_id& stream, const event_data& event) {
  return detail::record_size(stream.category.size() + 1 + stream.id.size(), event);
}

expected<sync_policy> parse_sync_policy(const std::string& name) {
  if (name == "always") return sync_policy::always;
  if (name == "interval") return sync_policy::interval;
  if (name == "never") return sync_policy::never;
  return error{errc::invalid_argument,
               "unknown sync policy \"" + name + "\" (expected always, interval or never)"};
}

const char* to_string(sync_policy p) {
  switch (p) {
    case sync_policy::always: return "always";
    case sync_policy::interval: return "interval";
    case sync_policy::never: return "never";
  }
  return "unknown";
}

expected<std::shared_ptr<journal>> open_file_journal(const std::string& dir,
                                                     file_journal_options options) {
  if (dir.empty()) return error{errc::invalid_argument, "the store folder name is empty"};
  if (options.segment_bytes == 0 || options.segment_bytes > detail::max_segment_bytes)
    return error{errc::invalid_argument,
                 "segment_bytes must be between 1 and 1 GiB, not " +
                   std::to_string(options.segment_bytes)};
  if (options.sync == sync_policy::interval && options.sync_interval.count() <= 0)
    return error{errc::invalid_argument, "sync_interval must be positive"};
  try {
    auto j = std::make_shared<detail::file_journal_impl>(dir, std::move(options));
    if (auto r = j->open(); !r) return std::move(r).error();
    return std::shared_ptr<journal>(std::move(j));
  } catch (const std::bad_alloc&) {
    return error{errc::unavailable, "out of memory opening the store in folder " + dir};
  } catch (const std::system_error& e) { // std::thread
    return error{errc::unavailable, "cannot open the store in folder " + dir + ": " + e.what()};
  }
}

expected<uint64_t> refresh_file_journal(journal& j) {
  auto* file = dynamic_cast<detail::file_journal_impl*>(&j);
  if (!file) return error{errc::invalid_argument, "refresh_file_journal: not a file journal"};
  try {
    return file->refresh();
  } catch (const std::bad_alloc&) {
    return error{errc::unavailable, "out of memory refreshing the store"};
  }
}

expected<file_journal_counters> counters_of_file_journal(const journal& j) {
  auto* file = dynamic_cast<const detail::file_journal_impl*>(&j);
  if (!file)
    return error{errc::invalid_argument, "counters_of_file_journal: not a file journal"};
  return file->counters();
}

} // namespace cairn
