// store_saver: one actor's writes of one record it keeps in a store (a checkpoint, a
// snapshot, a list of parked events) off CAF's scheduler threads, on the node's reader
// threads (store_readers.hpp). At most one write is in flight; a write asked for
// meanwhile waits, and a newer one replaces it (the newest wins); a write never
// overtakes an older one. Without a reader, writes run inline, as before.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "cairn/expected.hpp"

namespace cairn {

class store_saver {
public:
  /// The write. May run on a reader thread: it captures only what it owns or
  /// shares (shared_ptr to the store, the record by value), never the actor's state.
  using write_fn = std::function<expected<void>()>;
  /// Gets the write's outcome, inside the actor (never after it stopped).
  using done_fn = std::function<void(const expected<void>&)>;

  /// `self` owns this saver (keep it in the actor's state); `reader`: the node's
  /// reader actor, or null to write inline.
  store_saver(caf::event_based_actor* self, caf::actor reader);
  /// Drops a waiting write; the one in flight finishes on its reader thread.
  ~store_saver();
  store_saver(const store_saver&) = delete;
  store_saver& operator=(const store_saver&) = delete;

  /// Writes once the write in flight (if any) is done; replaces a waiting one.
  void save(write_fn write, done_fn done);
  /// Writes here and now, for an actor's last write as it stops: after the write in
  /// flight, if that already runs; a waiting one and a queued one are dropped (this
  /// write is newer).
  expected<void> save_now(const write_fn& write);
  /// A write is in flight or waiting.
  bool busy() const { return in_flight_; }

  struct lane; // orders the writes of this saver across threads
private:
  void launch(write_fn write, done_fn done);

  caf::event_based_actor* self_;
  caf::actor reader_;
  std::shared_ptr<lane> lane_;
  uint64_t next_seq_ = 0;
  bool in_flight_ = false;
  std::optional<std::pair<write_fn, done_fn>> waiting_;
};

} // namespace cairn
