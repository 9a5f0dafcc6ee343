// The registry of aggregate types that a program built on the cairn tool knows.
#include <cairn/cli_tool.hpp>

namespace cairn::cli {

void registry::add(std::string category, replay_fn replay) {
  for (auto& entry : aggregates_) {
    if (entry.first == category) {
      entry.second = std::move(replay);
      return;
    }
  }
  aggregates_.emplace_back(std::move(category), std::move(replay));
}

const registry::replay_fn* registry::find(std::string_view category) const {
  for (auto& entry : aggregates_)
    if (entry.first == category) return &entry.second;
  return nullptr;
}

std::vector<std::string> registry::categories() const {
  std::vector<std::string> out;
  out.reserve(aggregates_.size());
  for (auto& entry : aggregates_) out.push_back(entry.first);
  return out;
}

} // namespace cairn::cli
