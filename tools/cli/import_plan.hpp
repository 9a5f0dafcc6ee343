// What `cairn import` does with each input line, given what the store already holds:
// append it, skip it (the store has the same event at that version), or refuse it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <cairn/expected.hpp>
#include <cairn/journal.hpp>

#include "event_json.hpp"

namespace cairn::cli {

/// Why a line's event differs from the stored one at its version, or "" if it is the
/// same event: type, schema version, metadata (but for the "imported_timestamp_ns"
/// entry: commit times are each store's own) and payload.
std::string difference(const event_data& line, const envelope& stored);

/// Decides line by line, in input order. A line with a "version" names its event's
/// place in the stream: at or below the stored version it must be the stored event
/// (then it is skipped), one above the last version it is appended, and the lines of a
/// stream must follow each other (3, 4, 5...). A line without a version is appended
/// after the stream's previous line or, for its first line, after the stored events,
/// which needs `allow_append` if there are any.
class import_plan {
public:
  enum class action { append, skip };
  struct decision {
    action what = action::append;
    uint64_t version = 0; ///< the event's version in its stream
  };

  /// `store` (may be null: no store yet, so everything is new) must outlive the plan;
  /// `where` names it in messages.
  import_plan(const journal* store, bool allow_append, std::string where);

  /// Errors: conflict (the store holds another event at that version; or the stream
  /// has stored events, the line no version, and appending was not allowed),
  /// invalid_argument (a version that does not follow the stream's previous line, or
  /// one that leaves a gap after the stored events), or the store's read error.
  expected<decision> decide(const import_event& e);

  /// Streams seen so far.
  size_t streams() const { return streams_.size(); }

private:
  struct stream_state {
    uint64_t stored = 0; ///< the stream's version in the store
    uint64_t last = 0;   ///< the version of the stream's previous line (0: none yet)
  };

  const journal* store_;
  bool allow_append_;
  std::string where_;
  std::unordered_map<std::string, stream_state> streams_;
};

} // namespace cairn::cli
