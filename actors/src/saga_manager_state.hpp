// The saga manager's state and the functions its two source files share:
// saga_manager.cpp (following events, rounds of writes, commands and replies) and
// saga_parking.cpp (parking, operator retries and closes, checkpoints).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "cairn/saga_admin.hpp"
#include "cairn/saga_process.hpp"
#include "cairn/saga_records.hpp"
#include "event_feed.hpp"
#include "rate_limited_log.hpp"
#include "saga_manager.hpp"

namespace cairn {

/// What happened to one send of an instance's command, queued for the next round.
struct saga_outcome {
  enum class kind : uint8_t { reply, timeout, resend };
  kind what = kind::reply;
  std::string key;
  uint64_t step_id = 0;
  uint64_t send_seq = 0;
  bool ok = false;
  command_reply reply;
  error err;
};

namespace saga_detail {

using sweep_atom = caf::atom_constant<caf::atom("sagasweep")>;
using checkpoint_atom = caf::atom_constant<caf::atom("sagacheck")>;
using again_atom = caf::atom_constant<caf::atom("sagaretry")>;

struct deadline {
  caf::timestamp at;
  std::string key;
  uint64_t step_id;
  uint64_t send_seq;
};

/// An operator's request (node::retry_saga / close_saga), run between rounds.
struct admin_request {
  bool close = false;
  std::string key;
  std::string reason;
  caf::response_promise answer;
};

/// An instance to park once it can be loaded: why, and the inputs whose work was lost.
struct park_order {
  error why;
  std::vector<uint64_t> inputs;
};

/// An operator's answer to a parked input event (node::retry_saga_event /
/// close_saga_event, or a retry a tool asked for while the node was down: no answer).
struct unrouted_request {
  bool close = false;
  uint64_t position = 0;
  std::string reason;
  std::optional<caf::response_promise> answer;
  std::string key; ///< the instance a retry handed the event to
};

/// A record for the dead-letter stream (saga_unrouted_stream), waiting to be stored.
struct unrouted_write {
  enum class kind : uint8_t { park, delivered, closed };
  kind what = kind::park;
  parked_saga_event event; ///< park: what is parked; otherwise only the position counts
  std::string text;        ///< delivered: the instance's key; closed: the reason
  std::optional<caf::response_promise> answer;
};

/// The saga's parked input events (events it could not hand to an instance).
struct unrouted_state {
  bool loaded = false; ///< `parked` is read from the store
  std::map<uint64_t, parked_saga_event> parked;   ///< stored, by position
  /// Retried or closed, after the checkpoint: skipped when the log is read again.
  std::set<uint64_t> resolved;
  std::vector<unrouted_write> unwritten;          ///< to store in the next round
  std::vector<unrouted_request> requests;         ///< to run between rounds
  std::vector<unrouted_request> after_round;      ///< retried: done once the round is stored
  /// `parked` and its resolved positions as read on a reader thread at the start
  /// (saga_loading.cpp), taken by load_unrouted().
  std::optional<expected<std::map<uint64_t, parked_saga_event>>> preread;
  std::vector<uint64_t> preread_resolved;
};

struct manager_state {
  static inline const char* name = "cairn.saga";

  std::shared_ptr<const saga_model> model;
  saga_options opts;
  std::shared_ptr<journal> store;
  caf::actor journal_actor;
  saga_command_sender send;
  saga_lease_hold lease;  // cluster members only
  bool lost_lease = false; // stopping: another member runs this saga now
  std::unique_ptr<feed_cursor> feed;
  stream_id checkpoint_stream;
  rate_limited_log warnings;

  // Instances in memory: unfinished ones (parked ones included, see parked()).
  std::unordered_map<std::string, std::unique_ptr<saga_process>> live;
  // Dropped after a transient failure: load and resume. Value: its last stored position.
  std::unordered_map<std::string, uint64_t> to_reload;
  std::unordered_map<std::string, park_order> to_park;
  uint64_t processed = 0;       // every event up to here is processed and its effects stored
  uint64_t checkpointed = 0;
  uint64_t rescan_through = 0;  // events up to here are re-read only to find open instances
  uint64_t rescan_next = 0;     // where that re-reading is (0: not started)
  uint64_t find_open_through = 0; // instances that stored an event up to here may be open
  uint64_t since_checkpoint = 0; // events (not its own) processed since the last checkpoint
  bool checkpoint_timer = false;
  bool checkpoint_due = false;
  bool checkpoint_backoff = false; // the last checkpoint write failed: wait for the timer

  // The round in flight: instance writes (or a checkpoint write) not yet answered.
  bool busy = false;
  size_t outstanding = 0;
  bool round_failed = false;
  uint64_t round_through = 0; // the last event position the round covers (0: none)
  std::unordered_set<std::string> touched;
  std::vector<caf::response_promise> answer_after_round;

  bool retry_scheduled = false;
  bool restart_feed = false; // on the next retry, re-read events from processed + 1
  uint64_t rounds_failed = 0;

  unrouted_state unrouted;

  // Store reads on the node's reader threads (saga_loading.cpp); null reader: inline.
  caf::actor reader;
  bool loading = false; // such a read is out: rounds and deliveries wait for it
  /// Instances loaded ahead for the events, reloads or retries that come next; taken
  /// by get_or_load(). Only instances not in `live`: none of ours writes their streams.
  std::unordered_map<std::string, expected<std::unique_ptr<saga_process>>> prefetched;

  std::vector<saga_outcome> queued;
  std::vector<admin_request> admin;
  std::deque<deadline> deadlines;
  bool sweeping = false;
};

using manager_t = caf::stateful_actor<manager_state>;

inline bool transient(const error& e) { return is_unavailable(e) || is_timeout(e); }

// saga_manager.cpp
void next_round(manager_t* self);
void finish_round(manager_t* self);
/// Forgets instance `key` after an error; it is loaded again on the next retry.
void drop(manager_t* self, const std::string& key, const error& why);
void schedule_retry(manager_t* self);
/// If `why` says the saga's lease moved (errc::fenced), stops the manager; true then.
bool lost_lease(manager_t* self, const error& why);
/// An append of the manager, fenced with its lease (if any).
append_request fenced(const manager_state& st, append_request req);
void store_round(manager_t* self, uint64_t through);
saga_process* get_or_load(manager_t* self, const std::string& key, error* why = nullptr);

// saga_parking.cpp
/// Parks instance `key` (loaded afresh from the store) after a non-transient error;
/// `inputs` are the inputs whose work was lost with its in-memory state.
void park(manager_t* self, const std::string& key, error why, std::vector<uint64_t> inputs);
/// Parks what park() could not load yet. False if a load failed transiently.
bool park_waiting(manager_t* self);
/// Retries a parked instance that is loaded fresh. Errors: not_found (not parked),
/// the retry's own failure (it is parked again).
expected<void> retry_parked(manager_t* self, const std::string& key);
/// Runs the operators' queued requests (between rounds).
void run_admin(manager_t* self);
/// The parked instances in memory.
std::vector<parked_saga> list_parked(const manager_state& st);
void write_checkpoint(manager_t* self);

// saga_unrouted.cpp
/// True if the event at `position` is parked, or was and is retried or closed since:
/// when the log is read again it is not routed again (only an operator's retry does).
inline bool unrouted_known(const manager_state& st, uint64_t position) {
  auto& u = st.unrouted;
  return (!u.parked.empty() && u.parked.count(position) > 0) ||
         (!u.resolved.empty() && u.resolved.count(position) > 0);
}
/// Forgets the resolved positions a restart no longer reads (the checkpoint is past them).
void prune_unrouted(manager_state& st);
/// Parks input event `e` that cannot be handed to an instance (unless it is parked).
void park_unrouted(manager_t* self, const envelope& e, const error& why);
/// Reads the parked events from the store (once). False if that failed transiently.
bool load_unrouted(manager_t* self);
/// True if records or operators' requests about parked events wait.
bool unrouted_waiting(const manager_state& st);
/// Runs the operators' requests about parked events (between rounds).
void run_unrouted_requests(manager_t* self);
/// Adds the round's write of dead-letter records to the round (store_round).
void store_unrouted(manager_t* self);
/// The round is stored (or failed): retries done in it are recorded next.
void finish_unrouted_round(manager_t* self, bool failed);
/// The last stored checkpoint of saga `name` in `checkpoint_stream` (position 0 and
/// nothing open if none).
saga_checkpoint load_checkpoint(const journal& store, std::string_view name,
                                const stream_id& checkpoint_stream);

// saga_loading.cpp: store reads off CAF's scheduler threads, when the node has readers.
/// Reads the checkpoint and the parked input events (on a reader thread if it can),
/// then starts: the first retry loads the instances and starts reading events.
void start_manager(manager_t* self);
/// Instance `key` as loaded ahead (taken from `prefetched`), else loaded here and now.
expected<std::unique_ptr<saga_process>> load_instance(manager_state& st, const std::string& key);
/// Forgets what was loaded ahead for `key` (its stream is about to change).
inline void forget_prefetched(manager_state& st, const std::string& key) {
  if (!st.prefetched.empty()) st.prefetched.erase(key);
}
/// With a reader: if event `events[i]`, the next to route, needs an instance that is not
/// in memory, starts loading the instances of events[i..] ahead (next_round() follows)
/// and returns true: deliver() stops before it.
bool prefetch_for_events(manager_t* self, const std::vector<const envelope*>& events, size_t i);
/// With a reader: starts loading the instances to reload ahead (again_atom follows) and
/// returns true; false if there is nothing to load or no reader.
bool prefetch_reloads(manager_t* self);

} // namespace saga_detail
} // namespace cairn

// Local only: replies travel from the node's dispatchers to the manager in-process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::saga_outcome)
