// event_renderer: turns a committed event into a Kafka message value: JSON from the
// event type's schema (json_codec.hpp) for the categories it knows, else the binary
// payload as stored.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "cairn/aggregate.hpp"
#include "cairn/envelope.hpp"
#include "cairn/json_codec.hpp"
#include "cairn/upcaster.hpp"

namespace cairn {

/// One event as a message value.
struct rendered_event {
  std::string value;
  std::string content_type; ///< "application/json" or "application/octet-stream"
  std::string type;         ///< the rendered event's type name (after upcasting)
  uint32_t schema_version = 1;
  std::string render_error; ///< why JSON rendering failed (then the payload is binary)
};

class event_renderer {
public:
  /// Renders one event of a category as JSON. Errors make the event go out binary.
  using json_fn = std::function<expected<rendered_event>(const envelope&)>;

  /// Renders the events of aggregate A's category as JSON (upcast to their current
  /// schema first). An old event that upcasts to several renders as a JSON array.
  template <class A>
  event_renderer& add_aggregate() {
    return add_events<typename aggregate_traits<A>::event_type>(
      std::string{aggregate_traits<A>::category()});
  }

  /// Renders the events of `category` as the described alternatives of Variant.
  template <class Variant>
  event_renderer& add_events(std::string category) {
    add(std::move(category), [](const envelope& e) -> expected<rendered_event> {
      auto events = upcast<Variant>(e);
      if (!events) return std::move(events).error();
      rendered_event out;
      out.content_type = "application/json";
      out.type = e.type;
      out.schema_version = e.schema_version;
      auto one = [&](const Variant& v) {
        return std::visit(
          [&](const auto& x) {
            auto s = schema_of<std::decay_t<decltype(x)>>();
            out.type = std::string{s.name};
            out.schema_version = s.version;
            return to_json(x);
          },
          v);
      };
      nlohmann::json j;
      if (events->size() == 1) {
        j = one(events->front());
      } else {
        j = nlohmann::json::array();
        for (auto& v : *events) j.push_back(one(v));
        out.type = e.type;
        out.schema_version = e.schema_version;
      }
      out.value = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return out;
    });
    return *this;
  }

  /// The type-erased form: `fn` renders the events of `category`.
  event_renderer& add(std::string category, json_fn fn);

  /// The message value for `e`: JSON if its category is known and it renders, else
  /// the stored payload (with render_error set if rendering failed).
  rendered_event render(const envelope& e) const;

private:
  std::map<std::string, json_fn, std::less<>> by_category_;
};

} // namespace cairn
