// event_renderer: JSON for the categories it knows, else the stored payload.
#include "cairn/event_renderer.hpp"

namespace cairn {

event_renderer& event_renderer::add(std::string category, json_fn fn) {
  by_category_[std::move(category)] = std::move(fn);
  return *this;
}

rendered_event event_renderer::render(const envelope& e) const {
  rendered_event out;
  if (auto it = by_category_.find(e.stream.category); it != by_category_.end()) {
    expected<rendered_event> json = error{errc::corrupt, "no rendering"};
    try {
      json = it->second(e);
    } catch (const std::exception& ex) {
      json = error{errc::corrupt, std::string{"rendering threw: "} + ex.what()};
    }
    if (json) return std::move(*json);
    out.render_error = json.error().describe();
  }
  out.value.assign(e.payload.begin(), e.payload.end());
  out.content_type = "application/octet-stream";
  out.type = e.type;
  out.schema_version = e.schema_version;
  return out;
}

} // namespace cairn
