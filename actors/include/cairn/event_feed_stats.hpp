// event_feed_stats: what a node's event feed holds and has done, to watch that its
// buffers stay bounded and whether followers read live or from the store.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn {

struct event_feed_stats {
  uint64_t head_position = 0;    ///< newest committed position the feed has seen
  size_t ring_events = 0;        ///< recent events it holds now
  size_t ring_capacity = 0;      ///< node_options::feed.ring_events
  /// The most it ever held; never above ring_capacity. (Memory can hold a little
  /// more: the committed batch at the ring's old end stays whole until all of it
  /// has aged out, and followers share what they were handed until they are done.)
  size_t peak_ring_events = 0;
  size_t parked = 0;             ///< followers waiting now for the next commit
  uint64_t answered_live = 0;    ///< requests answered from the ring
  uint64_t answered_behind = 0;  ///< requests told to read the store (catch-up)
  uint64_t store_reads = 0;      ///< times the feed read the store to close a gap
};

} // namespace cairn
