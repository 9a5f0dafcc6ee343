// saga_process: one saga instance plus the runtime's ledger of the commands it sent,
// both rebuilt from the instance's stream. The saga manager actor drives it; it does
// no I/O except reading the store, so it is tested without actors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/journal.hpp"
#include "cairn/saga_model.hpp"
#include "cairn/saga_records.hpp"
#include "cairn/schema.hpp"

namespace cairn {

/// A command to hand to the node now.
struct saga_dispatch {
  uint64_t step_id = 0;
  uint64_t send_seq = 0; ///< identifies this send: its reply or timeout must quote it
  command_message command;
};

class saga_process {
public:
  /// Loads instance `key` of `model` from `store` (its whole stream). A key with no
  /// stream yet gives a fresh process. A stream whose saga events the saga cannot
  /// take (undecodable, or apply throws) gives a parked process (and, unless the
  /// stream says so already, a saga_parked record waiting to be stored). Errors:
  /// those of the store, invalid_argument (a key unusable as a stream id), corrupt
  /// (an undecodable runtime record).
  static expected<std::unique_ptr<saga_process>> load(const journal& store,
                                                      std::shared_ptr<const saga_model> model,
                                                      std::string key);

  /// The key of the instance event `e` concerns: the sender's, if one of this saga's
  /// commands caused it; else the saga's correlate(); "" for none (also for the
  /// saga's own, checkpoint and dead-letter streams). Errors: corrupt, invalid_argument.
  static expected<std::string> route(const saga_model& model, const envelope& e);

  const std::string& key() const noexcept { return key_; }
  const stream_id& stream() const noexcept { return stream_; }
  /// The stored version of its stream (0: nothing stored yet).
  uint64_t version() const noexcept { return version_; }
  /// Position of the last input it processed; later inputs at or below it are skipped.
  uint64_t last_position() const noexcept { return last_position_; }
  /// True if nothing is stored or waiting to be stored: a fresh process that stayed
  /// idle can be dropped.
  bool empty() const noexcept { return version_ == 0 && unflushed_.empty(); }
  /// The saga is done() and no command of it is pending, or an operator closed it.
  bool finished() const {
    return closed_ || (!parked() && instance_->done() && pending_.empty());
  }
  /// True if it is parked (see saga_parked): it processes nothing and sends nothing
  /// until unpark() or close().
  bool parked() const noexcept { return parked_.has_value(); }
  /// Why it is parked (null if it is not).
  const saga_parked* park_reason() const noexcept { return parked_ ? &*parked_ : nullptr; }
  /// Inputs it holds for the retry (the one it failed on first).
  const std::vector<uint64_t>& held() const noexcept { return held_; }
  /// An operator asked for a retry (saga_retry_requested) that is not done yet.
  bool retry_requested() const noexcept { return parked() && retry_requested_; }
  /// Positions of the inputs it processed since the last take_append(): if that
  /// work is lost to an error, these are the inputs to hold when it is parked.
  const std::vector<uint64_t>& inputs_since_flush() const noexcept { return inputs_; }
  /// Position of the last event stored in its stream (0: none).
  uint64_t stored_position() const noexcept { return stored_position_; }
  /// Commands sent and not yet known applied or failed.
  size_t pending_steps() const noexcept { return pending_.size(); }
  const saga_instance& instance() const noexcept { return *instance_; }
  /// True if send `send_seq` of step `step_id` still waits for its reply (so a
  /// timeout for it means something).
  bool expects(uint64_t step_id, uint64_t send_seq) const {
    auto it = pending_.find(step_id);
    return it != pending_.end() && it->second.send_seq == send_seq && !it->second.awaiting_event;
  }

  /// Handles a committed input routed here. Skips it if at or before
  /// last_position(); holds it if parked. Resolves the step that caused it (if any),
  /// then runs react if it is an input type. A command decided with an invalid target
  /// goes to on_rejected (invalid_argument) at once. After an error drop the process,
  /// load it again, and park it (or retry later if the error is transient).
  expected<void> on_event(const envelope& e, const journal& store);

  /// Handles a parked input event that an operator retried (saga_unrouted): like
  /// on_event, but also when it comes after later inputs (it was set aside when they
  /// went through). Does nothing if it was handled before (a record of its stream
  /// names it as its cause: the retry was interrupted). Errors as on_event.
  expected<void> on_late_event(const envelope& e, const journal& store);

  /// Parks a freshly loaded process: records saga_parked with `why`. `inputs` (those
  /// after last_position()) are the inputs whose work was lost, held for the retry.
  void park(const error& why, const std::vector<uint64_t>& inputs = {});

  /// Retries a parked process: records saga_resumed, processes its held inputs again
  /// in order (read from `store`), and sends its pending steps again once that is
  /// stored. Errors as on_event (then drop it, load it again and park it again).
  expected<void> unpark(const journal& store);

  /// Closes it for good (an operator's decision): records saga_closed; pending steps
  /// and held inputs are abandoned.
  void close(std::string reason);

  /// The reply to send `send_seq` of step `step_id` (stale replies are ignored):
  /// accepted with events: wait for them to come in; accepted no-op: done;
  /// rejected, not_found, invalid_argument, corrupt: on_rejected; timeout: as
  /// on_timeout(); conflict: looks for the command's events in the target stream
  /// (found: applied; not found: re-sends at the target's new version);
  /// unavailable: re-sent later (take_delayed()).
  expected<void> on_reply(uint64_t step_id, uint64_t send_seq,
                          const expected<command_reply>& reply, const journal& store);

  /// Send `send_seq` of step `step_id` got no reply in time: asks the saga's
  /// on_timeout (retry, or give up and compensate).
  expected<void> on_timeout(uint64_t step_id, uint64_t send_seq, const journal& store);

  /// Sends the delayed step again (see take_delayed()), unless it moved on meanwhile.
  void resend(uint64_t step_id, uint64_t send_seq);

  /// Every pending step, to send again after a load (a restart, or a reload after
  /// a failed append). The saga's expected versions make a repeat harmless.
  std::vector<saga_dispatch> resume();

  /// True if events wait to be stored.
  bool has_append() const noexcept { return !unflushed_.empty(); }
  /// The append to make before the commands decided since the last call may go.
  append_request take_append();
  /// That append is durable: its commands become ready.
  void committed(const append_result& r);

  /// Commands to send now.
  std::vector<saga_dispatch> take_ready();
  /// Steps to send again after a delay (their send got `unavailable`), as
  /// (step_id, send_seq); pass each to resend() once the delay is over.
  std::vector<std::pair<uint64_t, uint64_t>> take_delayed();

private:
  struct pending_step {
    std::string name;
    command_message command;   ///< with metadata; expected_version is the current send's
    uint64_t recorded_version; ///< as stored: a search for its events starts after it
    uint32_t attempts = 1;     ///< sends decided, across restarts
    uint64_t send_seq = 0;
    bool awaiting_event = false; ///< accepted, or found applied: its event is on its way
  };

  saga_process(std::shared_ptr<const saga_model> model, std::string key);

  expected<void> replay(const envelope& e);
  expected<void> process(const envelope& e, const journal& store);
  expected<void> absorb(saga_effects effects, const std::string& cause, uint64_t position,
                        const journal& store, bool compensating);
  void record(event_data ev, const std::string& cause, uint64_t position);
  template <class T>
  void record_runtime(const T& rec, const std::string& cause, uint64_t position);
  expected<void> fail(std::map<uint64_t, pending_step>::iterator it, const error& why,
                      const journal& store);
  expected<void> resolve_conflict(std::map<uint64_t, pending_step>::iterator it,
                                  const journal& store);
  saga_dispatch dispatch(uint64_t step_id, pending_step& step);
  std::string command_id(uint64_t step_id) const;

  std::shared_ptr<const saga_model> model_;
  std::unique_ptr<saga_instance> instance_;
  std::string key_;
  stream_id stream_;
  uint64_t version_ = 0;
  uint64_t last_position_ = 0;
  uint64_t next_step_id_ = 1;
  std::map<uint64_t, pending_step> pending_;
  std::vector<event_data> unflushed_;
  std::vector<uint64_t> after_commit_;
  std::vector<saga_dispatch> ready_;
  std::vector<std::pair<uint64_t, uint64_t>> delayed_;
  uint64_t stored_position_ = 0;
  std::optional<saga_parked> parked_;
  std::vector<uint64_t> held_;
  std::vector<uint64_t> inputs_;
  bool retry_requested_ = false;
  bool closed_ = false;
  bool broken_ = false; ///< its own events did not replay: its state is unusable
};

/// Saga S's instance `key` as stored: replays its stream. For tests and tools.
/// Errors: those of saga_process::load.
template <class S>
expected<S> load_saga_state(const journal& store, std::string key) {
  auto p = saga_process::load(store, make_saga_model<S>(), std::move(key));
  if (!p) return p.error();
  return *static_cast<const S*>((*p)->instance().state());
}

} // namespace cairn
