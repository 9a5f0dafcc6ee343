// saga_model: the type-erased face of an application saga, so the saga runtime is
// compiled once and never sees application types.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/expected.hpp"
#include "cairn/saga.hpp"
#include "cairn/upcaster.hpp"

namespace cairn {

/// A saga's decision in encoded form: its events (the runtime fills in their
/// metadata), the commands to send, or retry.
struct saga_effects {
  std::vector<event_data> events;
  std::vector<saga_command> commands;
  bool retry = false;
};

/// One saga instance's state. Used by one actor at a time. After any error the
/// state may be partly changed: drop the instance and load it again.
class saga_instance {
public:
  virtual ~saga_instance() = default;

  /// Folds one of the saga's own stored events into the state. Errors: not_found
  /// (not one of its event types), corrupt (undecodable, or apply threw).
  virtual expected<void> replay(const envelope& e) = 0;

  /// Runs react for an input event and applies the events it decides. Errors:
  /// not_found (not an input type), corrupt (undecodable), invalid_argument (react
  /// or apply threw).
  virtual expected<saga_effects> react(const envelope& input) = 0;

  /// Runs on_rejected / on_timeout and applies the events they decide. Errors:
  /// invalid_argument (the handler or apply threw).
  virtual expected<saga_effects> on_rejected(const saga_failure& f) = 0;
  virtual expected<saga_effects> on_timeout(const saga_failure& f) = 0;

  /// The saga's done().
  virtual bool done() const = 0;

  /// The typed state (a `const S*`), for tests and tools that know S.
  virtual const void* state() const = 0;
};

/// Describes one saga type. Thread-safe (immutable).
class saga_model {
public:
  virtual ~saga_model() = default;
  virtual std::string_view name() const = 0;
  /// Its instances' stream category, "saga_<name>".
  virtual const std::string& category() const = 0;
  /// True if `type` names one of its input events.
  virtual bool reads(std::string_view type) const = 0;
  /// True if it declares correlate() for input type `type`.
  virtual bool correlates(std::string_view type) const = 0;
  /// The key from the saga's correlate() for this input, "" for none. Errors:
  /// corrupt (undecodable), invalid_argument (correlate threw).
  virtual expected<std::string> correlate(const envelope& e) const = 0;
  /// Empty if its type names are usable, else the problem (see saga_traits::check_names).
  virtual std::string check_names() const = 0;
  virtual std::unique_ptr<saga_instance> make_instance() const = 0;
};

namespace detail {

template <class S>
class typed_saga_instance final : public saga_instance {
public:
  using traits = saga_traits<S>;

  expected<void> replay(const envelope& e) override {
    auto ev = traits::event_codec::decode(e);
    if (!ev) return ev.error();
    try {
      traits::evolve(state_, *ev);
    } catch (const std::exception& ex) {
      return error{errc::corrupt, "saga apply threw on " + e.stream.str() + " version " +
                                    std::to_string(e.version) + ": " + ex.what()};
    }
    return {};
  }

  /// Reacts to each current event the input upcasts to (usually one), in order.
  expected<saga_effects> react(const envelope& input) override {
    saga_effects all;
    std::optional<error> failed;
    auto ok = decode_each<typename traits::input_type>(input, [&](auto&& in) {
      if (failed) return;
      auto r = run([&] { return traits::react(state_, input, in); }, "react");
      if (!r) {
        failed.emplace(r.error());
        return;
      }
      for (auto& e : r->events) all.events.push_back(std::move(e));
      for (auto& c : r->commands) all.commands.push_back(std::move(c));
      all.retry = all.retry || r->retry;
    });
    if (!ok) return ok.error();
    if (failed) return *failed;
    return all;
  }

  expected<saga_effects> on_rejected(const saga_failure& f) override {
    return run([&] { return traits::on_rejected(state_, f); }, "on_rejected");
  }

  expected<saga_effects> on_timeout(const saga_failure& f) override {
    return run([&] { return traits::on_timeout(state_, f); }, "on_timeout");
  }

  bool done() const override { return traits::done(state_); }
  const void* state() const override { return &state_; }

private:
  template <class F>
  expected<saga_effects> run(F&& handler, const char* what) {
    try {
      auto d = handler();
      saga_effects out;
      out.retry = d.retry();
      out.events.reserve(d.events().size());
      for (auto& e : d.events()) out.events.push_back(traits::event_codec::encode(e));
      for (auto& e : d.events()) traits::evolve(state_, e);
      out.commands = std::move(d.commands());
      return out;
    } catch (const std::exception& ex) {
      return error{errc::invalid_argument, std::string{traits::name()} + " saga " + what +
                                             " threw: " + ex.what()};
    }
  }

  S state_{};
};

template <class S>
class typed_saga_model final : public saga_model {
public:
  using traits = saga_traits<S>;
  using input_type = typename traits::input_type;

  std::string_view name() const override { return traits::name(); }
  const std::string& category() const override { return category_; }
  // Old type names that the input variant's upcasters turn into inputs count too.
  bool reads(std::string_view type) const override {
    return traits::input_codec::knows(type) || upcasters_of<input_type>().handles(type);
  }
  bool correlates(std::string_view type) const override {
    return traits::correlates(type) ||
           (!traits::input_codec::knows(type) && upcasters_of<input_type>().handles(type));
  }

  /// The key of the first current event the input upcasts to that has one.
  expected<std::string> correlate(const envelope& e) const override {
    std::string key;
    try {
      auto ok = decode_each<input_type>(e, [&](auto&& in) {
        if (key.empty()) key = traits::correlate(e, in);
      });
      if (!ok) return error{errc::corrupt, std::string{traits::name()} + " saga cannot read " +
                                             event_id(e) + ": " + ok.error().message()};
    } catch (const std::exception& ex) {
      return error{errc::invalid_argument, std::string{traits::name()} +
                                             " saga correlate threw on " + event_id(e) + ": " +
                                             ex.what()};
    }
    return key;
  }

  std::string check_names() const override { return traits::check_names(); }

  std::unique_ptr<saga_instance> make_instance() const override {
    return std::make_unique<typed_saga_instance<S>>();
  }

private:
  std::string category_ = saga_category(traits::name());
};

} // namespace detail

/// The model of saga type S.
template <class S>
std::shared_ptr<const saga_model> make_saga_model() {
  return std::make_shared<detail::typed_saga_model<S>>();
}

} // namespace cairn
