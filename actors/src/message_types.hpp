// CAF's view of Cairn's messages: atoms, inspect() overloads, and conversions
// between cairn::error and caf::error. Private to the actors library and its tests.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "cairn/command.hpp"
#include "cairn/envelope.hpp"
#include "cairn/journal.hpp"
#include "cairn/node.hpp"
#include "cairn/query.hpp"

namespace cairn {

using append_atom = caf::atom_constant<caf::atom("append")>;
using appended_atom = caf::atom_constant<caf::atom("appended")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using command_atom = caf::atom_constant<caf::atom("command")>;
using query_atom = caf::atom_constant<caf::atom("query")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using position_atom = caf::atom_constant<caf::atom("position")>;
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
// The event feed (event_feed.hpp) and the actors that follow it.
using feed_atom = caf::atom_constant<caf::atom("feed")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using feed_stats_atom = caf::atom_constant<caf::atom("feedstats")>;
using rebuild_atom = caf::atom_constant<caf::atom("rebuild")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;

/// The category under which cairn::errc codes travel inside caf::error.
constexpr caf::atom_value error_category = caf::atom("cairn");

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_id& x) {
  return f(caf::meta::type_name("cairn.stream_id"), x.category, x.id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metadata& x) {
  return f(caf::meta::type_name("cairn.metadata"), x.correlation_id, x.causation_id, x.entries);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_data& x) {
  return f(caf::meta::type_name("cairn.event_data"), x.type, x.schema_version, x.meta,
           x.payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  return f(caf::meta::type_name("cairn.envelope"), x.stream, x.version, x.position, x.type,
           x.schema_version, x.timestamp_ns, x.meta, x.payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_request& x) {
  return f(caf::meta::type_name("cairn.append_request"), x.stream, x.expected_version, x.events);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_result& x) {
  return f(caf::meta::type_name("cairn.append_result"), x.first_version, x.last_version,
           x.first_position, x.last_position);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command_message& x) {
  return f(caf::meta::type_name("cairn.command_message"), x.target, x.type, x.schema_version,
           x.meta, x.payload, x.expected_version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command_reply& x) {
  return f(caf::meta::type_name("cairn.command_reply"), x.version, x.position, x.events);
}

/// A cairn::error as a caf::error (category "cairn", message text as context).
caf::error to_caf(const error& e);

/// Any caf::error as a cairn::error; CAF's own codes map to timeout/unavailable.
error from_caf(const caf::error& e);

} // namespace cairn

namespace cairn {
/// Which aggregates a router stops (node::stop_aggregates): local only.
struct aggregate_filter {
  std::function<bool(const stream_id&)> matches;
};
} // namespace cairn

// Local-only messages: they carry closures and never leave the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::query_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::aggregate_filter)
