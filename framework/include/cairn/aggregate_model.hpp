// aggregate_model: the type-erased face of an application aggregate, so the actor
// runtime is compiled once and never sees application types.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/aggregate.hpp"
#include "cairn/command.hpp"
#include "cairn/expected.hpp"
#include "cairn/snapshot_store.hpp"
#include "cairn/upcaster.hpp"

namespace cairn {

/// One live aggregate's state. Used by exactly one actor at a time.
class aggregate_instance {
public:
  virtual ~aggregate_instance() = default;

  /// Folds one stored event into the state (upcast first if it is of an older schema
  /// or name: upcaster.hpp) and advances version() to its version. Errors: corrupt
  /// (undecodable bytes, no upcaster for its version, or an exception in the
  /// application's evolve), not_found (an event type this aggregate does not know).
  virtual expected<void> replay(const envelope& e) = 0;

  /// Decides on an encoded command. On success returns the encoded events (maybe
  /// none) and keeps them pending for commit(). Errors: rejected (the business
  /// rule's reason), not_found (unknown command type), invalid_argument (bytes
  /// that do not decode, or an exception thrown by the application's decide).
  virtual expected<std::vector<event_data>> decide(const command_message& command) = 0;

  /// Applies the events of the last decide() once they are durable; advances version().
  /// An error (exception in evolve) leaves the state unusable: reload it from the store.
  virtual expected<void> commit() = 0;

  /// Drops the pending events of the last decide() (their append failed).
  virtual void discard() = 0;

  /// The state as a snapshot at version(). Errors: not_found if the aggregate type
  /// has no schema (declare `describe(cairn::type<A>)` to enable snapshots).
  virtual expected<snapshot> take_snapshot(const stream_id& stream) const = 0;

  /// Replaces the state with a snapshot's. Errors: invalid_argument if the snapshot
  /// is of another type or schema version (replay from the start instead),
  /// corrupt if its bytes do not decode. On error the state is unchanged.
  virtual expected<void> restore(const snapshot& s) = 0;

  /// The version of the last event folded into the state (0 for a new aggregate).
  uint64_t version() const noexcept { return version_; }

protected:
  uint64_t version_ = 0;
};

/// Creates instances of one aggregate type. Thread-safe (immutable).
class aggregate_model {
public:
  virtual ~aggregate_model() = default;
  virtual std::string_view category() const = 0;
  virtual std::unique_ptr<aggregate_instance> make_instance() const = 0;
};

namespace detail {

template <class A>
class typed_aggregate_instance final : public aggregate_instance {
public:
  using traits = aggregate_traits<A>;

  expected<void> replay(const envelope& e) override {
    // An old event may upcast to several (a split): all of them are folded in, and the
    // version stays the stored event's.
    expected<void> ok;
    try {
      ok = decode_each<typename traits::event_type>(
        e, [this](const typename traits::event_type& ev) { traits::evolve(state_, ev); });
    } catch (const std::exception& ex) {
      return error{errc::corrupt, "evolve threw on " + e.stream.str() + " version " +
                                    std::to_string(e.version) + ": " + ex.what()};
    }
    if (!ok) return ok;
    version_ = e.version;
    return {};
  }

  expected<std::vector<event_data>> decide(const command_message& command) override {
    pending_.clear();
    auto cmd = traits::command_codec::decode(command.type, command.schema_version,
                                             command.payload.data(), command.payload.size());
    if (!cmd) {
      if (is_not_found(cmd.error()))
        return error{errc::not_found, std::string{traits::category()} + " has no command \"" +
                                        command.type + "\""};
      return error{errc::invalid_argument, cmd.error().message()};
    }
    try {
      auto d = traits::decide(state_, *cmd);
      if (d.rejected()) return error{errc::rejected, d.reason()};
      pending_ = std::move(d.events());
    } catch (const std::exception& ex) {
      return error{errc::invalid_argument, std::string{"decide threw: "} + ex.what()};
    }
    std::vector<event_data> out;
    out.reserve(pending_.size());
    for (auto& e : pending_) out.push_back(traits::event_codec::encode(e, command.meta));
    return out;
  }

  expected<void> commit() override {
    try {
      for (auto& e : pending_) {
        traits::evolve(state_, e);
        ++version_;
      }
    } catch (const std::exception& ex) {
      pending_.clear();
      return error{errc::corrupt, std::string{"evolve threw: "} + ex.what()};
    }
    pending_.clear();
    return {};
  }

  void discard() override { pending_.clear(); }

  expected<snapshot> take_snapshot(const stream_id& stream) const override {
    if constexpr (is_described_v<A>) {
      auto s = schema_of<A>();
      return snapshot{stream, version_, std::string{s.name}, s.version, now_ns(), encode(state_)};
    } else {
      return error{errc::not_found, std::string{traits::category()} +
                                      " has no schema, so it cannot be snapshotted"};
    }
  }

  expected<void> restore(const snapshot& snap) override {
    if constexpr (is_described_v<A>) {
      auto s = schema_of<A>();
      if (snap.type != s.name || snap.schema_version != s.version)
        return error{errc::invalid_argument,
                     "snapshot of " + snap.stream.str() + " is " + snap.type + " v" +
                       std::to_string(snap.schema_version) + ", the aggregate is " +
                       std::string{s.name} + " v" + std::to_string(s.version)};
      auto state = decode<A>(snap.state);
      if (!state) return error{errc::corrupt, "snapshot of " + snap.stream.str() + ": " +
                                                state.error().message()};
      state_ = std::move(*state);
      version_ = snap.version;
      return {};
    } else {
      return error{errc::not_found, std::string{traits::category()} + " has no schema"};
    }
  }

  const A& state() const { return state_; }

private:
  A state_{};
  std::vector<typename traits::event_type> pending_;
};

template <class A>
class typed_aggregate_model final : public aggregate_model {
public:
  std::string_view category() const override { return aggregate_traits<A>::category(); }
  std::unique_ptr<aggregate_instance> make_instance() const override {
    return std::make_unique<typed_aggregate_instance<A>>();
  }
};

} // namespace detail

/// The model of aggregate type A.
template <class A>
std::shared_ptr<const aggregate_model> make_aggregate_model() {
  return std::make_shared<detail::typed_aggregate_model<A>>();
}

} // namespace cairn

namespace cairn {

/// Encodes a typed command for aggregate A with entity id `id`.
template <class A>
command_message make_command(std::string id, const typename A::command_type& command,
                             metadata meta = {}) {
  auto data = aggregate_traits<A>::command_codec::encode(command, std::move(meta));
  command_message msg;
  msg.target = stream_id{std::string{aggregate_traits<A>::category()}, std::move(id)};
  msg.type = std::move(data.type);
  msg.schema_version = data.schema_version;
  msg.meta = std::move(data.meta);
  msg.payload = std::move(data.payload);
  return msg;
}

} // namespace cairn
