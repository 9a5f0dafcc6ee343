// idempotency_memory: the outcomes of an aggregate's most recent commands that carried
// an idempotency key, so that a retried command is answered with its first outcome.
#pragma once

#include <deque>
#include <string>
#include <unordered_map>

#include "cairn/command.hpp"
#include "cairn/envelope.hpp"

namespace cairn {

/// The metadata entry a command's idempotency key travels in (the HTTP API's
/// Idempotency-Key header lands there too). It is copied onto the command's events.
inline const std::string idempotency_key_entry = "idempotency-key";

class idempotency_memory {
public:
  explicit idempotency_memory(size_t capacity) : capacity_(capacity) {}

  /// The outcome of the command that carried `key`, if remembered.
  const command_reply* find(const std::string& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &it->second;
  }

  /// A command with `key` stored its events: `reply` is its outcome.
  void remember(const std::string& key, const command_reply& reply) {
    last_.clear();
    insert(key, reply);
  }

  /// An event replayed in order: its key (if any) belongs to the command that stored
  /// it; consecutive events with the same key are that one command's.
  void observe(const envelope& e) {
    auto* key = e.meta.find(idempotency_key_entry);
    if (!key) return last_.clear();
    if (*key == last_) {
      auto& r = by_key_[last_];
      r.version = e.version;
      r.position = e.position;
      ++r.events;
      return;
    }
    last_ = *key;
    insert(*key, command_reply{e.version, e.position, 1});
  }

  size_t size() const { return by_key_.size(); }

  /// Adds `older`'s keys that this memory does not have (the keys of commands from
  /// before the ones it has seen).
  void absorb(const idempotency_memory& older) {
    for (auto& key : older.order_)
      if (!by_key_.count(key)) insert(key, older.by_key_.at(key));
    last_.clear();
  }

private:
  void insert(const std::string& key, const command_reply& reply) {
    auto [it, fresh] = by_key_.insert_or_assign(key, reply);
    if (!fresh) return;
    order_.push_back(key);
    while (order_.size() > capacity_) {
      by_key_.erase(order_.front());
      order_.pop_front();
    }
  }

  size_t capacity_;
  std::unordered_map<std::string, command_reply> by_key_;
  std::deque<std::string> order_; // oldest first
  std::string last_;              // key of the event observed last
};

} // namespace cairn
