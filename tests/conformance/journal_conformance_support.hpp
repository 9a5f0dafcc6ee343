// Helpers for the journal conformance suite: request builders, checked reads, test dirs.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/journal.hpp"

namespace cairn::conformance {

using journal_factory = std::function<std::shared_ptr<journal>()>;
using reopen_factory = std::function<std::shared_ptr<journal>(const std::string& dir)>;

inline constexpr size_t all = std::numeric_limits<size_t>::max();

inline stream_id sid(std::string category, std::string id) {
  return stream_id{std::move(category), std::move(id)};
}

inline event_data ev(std::string type, const std::string& payload = "") {
  event_data e;
  e.type = std::move(type);
  e.payload.assign(payload.begin(), payload.end());
  return e;
}

inline std::string text(const bytes& b) { return std::string(b.begin(), b.end()); }

/// A request for `n` events whose payloads are "<tag>0", "<tag>1", ...
inline append_request req(stream_id s, uint64_t expected, size_t n, const std::string& tag = "e") {
  append_request r{std::move(s), expected, {}};
  for (size_t i = 0; i < n; ++i) r.events.push_back(ev("happened", tag + std::to_string(i)));
  return r;
}

inline std::vector<envelope> read_all_of(const journal& j, uint64_t from = 1, size_t max = all) {
  auto r = j.read_all(from, max);
  REQUIRE(r.has_value());
  return *r;
}

inline std::vector<envelope> read_stream_of(const journal& j, const stream_id& s,
                                            uint64_t from = 1, size_t max = all) {
  auto r = j.read_stream(s, from, max);
  REQUIRE(r.has_value());
  return *r;
}

inline uint64_t version_of(const journal& j, const stream_id& s) {
  auto v = j.stream_version(s);
  REQUIRE(v.has_value());
  return *v;
}

inline std::vector<stream_id> sorted_streams(const journal& j) {
  auto r = j.list_streams();
  REQUIRE(r.has_value());
  auto out = *r;
  std::sort(out.begin(), out.end());
  return out;
}

/// Appends and requires success.
inline append_result ok(journal& j, append_request r) {
  auto res = j.append_one(std::move(r));
  INFO((res ? std::string("ok") : res.error().describe()));
  REQUIRE(res.has_value());
  return *res;
}

inline void require_positions(const std::vector<envelope>& es, uint64_t first, uint64_t last) {
  REQUIRE(es.size() == last - first + 1);
  for (size_t i = 0; i < es.size(); ++i) REQUIRE(es[i].position == first + i);
}

inline void require_versions(const std::vector<envelope>& es, uint64_t first, uint64_t last) {
  REQUIRE(es.size() == last - first + 1);
  for (size_t i = 0; i < es.size(); ++i) REQUIRE(es[i].version == first + i);
}

/// Requires that `r` failed with `code`; returns its error.
inline error failed(const expected<append_result>& r, errc code) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == code);
  return r.error();
}

/// Requires that `r` succeeded and landed at `want`.
inline void succeeded(const expected<append_result>& r, const append_result& want) {
  INFO((r ? std::string("ok") : r.error().describe()));
  REQUIRE(r.has_value());
  CHECK(*r == want);
}

/// "" if `es` are contiguous from `first_position` and every request in it is whole;
/// payloads are "<request size>:<index in request>". Free of Catch2 calls (thread-safe).
inline std::string snapshot_problem(const std::vector<envelope>& es, uint64_t first_position) {
  for (size_t i = 0; i < es.size(); ++i) {
    if (es[i].position != first_position + i)
      return "hole before position " + std::to_string(es[i].position);
    auto p = text(es[i].payload);
    auto colon = p.find(':');
    if (colon == std::string::npos) return "unexpected payload " + p;
    size_t size = std::stoul(p.substr(0, colon)), index = std::stoul(p.substr(colon + 1));
    if (index == 0 && i + size > es.size())
      return "partial request at position " + std::to_string(es[i].position);
  }
  return {};
}

/// One pass of a reader running beside writers: reads every event from position 1 (in
/// chunks of `chunk` on odd passes, like a catch-up subscription; all at once on even
/// ones) and one of the streams "<category>-0" .. "<category>-<streams - 1>", and says
/// what is inconsistent ("" if nothing). Free of Catch2 calls (thread-safe).
inline std::string reader_pass_problem(const journal& j, size_t pass, size_t chunk,
                                       const std::string& category, size_t streams) {
  uint64_t head = j.head_position();
  std::vector<envelope> es;
  bool failed = false;
  for (size_t c = pass % 2 ? chunk : all;;) {
    auto r = j.read_all(es.size() + 1, c);
    if (!r) {
      failed = true;
      break;
    }
    es.insert(es.end(), r->begin(), r->end());
    if (r->size() < c) break;
  }
  std::string problem;
  if (failed || es.size() < head) problem = "read_all lost committed events";
  else problem = snapshot_problem(es, 1);
  auto s = sid(category, std::to_string(head % streams));
  auto v = j.stream_version(s);
  auto ss = j.read_stream(s, 1, all);
  if (!v || !ss || ss->size() < *v) problem = "read_stream lost committed events";
  for (size_t i = 0; ss && i < ss->size(); ++i)
    if ((*ss)[i].version != i + 1) problem = "hole in stream " + s.str();
  return problem;
}

/// Creates a fresh empty directory; removes it and its contents on destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("cairn-conformance-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace cairn::conformance

// Readable failure messages for the suite's comparisons.
template <>
struct Catch::StringMaker<cairn::errc> {
  static std::string convert(cairn::errc code) { return std::string(cairn::to_string(code)); }
};
template <>
struct Catch::StringMaker<cairn::append_result> {
  static std::string convert(const cairn::append_result& r) {
    std::ostringstream os;
    os << "{versions " << r.first_version << ".." << r.last_version << ", positions "
       << r.first_position << ".." << r.last_position << "}";
    return os.str();
  }
};
template <>
struct Catch::StringMaker<cairn::envelope> {
  static std::string convert(const cairn::envelope& e) {
    std::ostringstream os;
    os << "{" << e.stream << " v" << e.version << " @" << e.position << " " << e.type << " "
       << e.payload.size() << " bytes}";
    return os.str();
  }
};
