// Helpers for the file journal tests: opening stores in temp dirs, damaging files on purpose.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/file_journal.hpp"
#include "conformance/journal_conformance_support.hpp"

namespace cairn::file_test {

namespace fs = std::filesystem;
using conformance::temp_dir;

/// Collects what the journal logs, for tests to look at.
struct log_lines {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> hook() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(line);
    };
  }
  bool contains(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
  std::string all() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
  }
};

inline file_journal_options options_for(sync_policy sync, uint64_t segment_bytes = 64u << 20) {
  file_journal_options o;
  o.sync = sync;
  o.segment_bytes = segment_bytes;
  return o;
}

inline std::shared_ptr<journal> open_ok(const fs::path& dir, file_journal_options options) {
  auto j = open_file_journal(dir.string(), std::move(options));
  INFO((j ? std::string("opened") : j.error().describe()));
  REQUIRE(j.has_value());
  return *j;
}

/// A fresh store in its own temp dir, removed after the journal is gone.
inline std::shared_ptr<journal> fresh_store(file_journal_options options) {
  struct holder {
    temp_dir dir;                 // destroyed last
    std::shared_ptr<journal> j;   // destroyed first
  };
  auto h = std::make_shared<holder>();
  auto opened = open_file_journal(h->dir.path.string(), std::move(options));
  if (!opened) FAIL(opened.error().describe());
  h->j = *opened;
  return std::shared_ptr<journal>(h, h->j.get());
}

/// Sorted paths of the folder's files whose names end in `suffix`.
inline std::vector<fs::path> files_ending(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (auto& entry : fs::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<fs::path> segments(const fs::path& dir) { return files_ending(dir, ".log"); }

inline std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const fs::path& path, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
}

/// XORs one byte of a file with 0x5a.
inline void flip_byte(const fs::path& path, uint64_t offset) {
  auto data = read_file(path);
  REQUIRE(offset < data.size());
  data[static_cast<size_t>(offset)] ^= 0x5a;
  write_file(path, data);
}

/// Offsets of the records of a segment file, found by following the length fields.
inline std::vector<uint64_t> record_offsets(const fs::path& path) {
  auto data = read_file(path);
  std::vector<uint64_t> out;
  for (uint64_t at = 32; at + 8 <= data.size();) {
    out.push_back(at);
    uint64_t body = data[at + 4] | data[at + 5] << 8 | data[at + 6] << 16 |
                    uint64_t(data[at + 7]) << 24;
    at += 8 + body;
  }
  return out;
}

inline void append_bytes(const fs::path& path, const std::vector<uint8_t>& extra) {
  auto data = read_file(path);
  data.insert(data.end(), extra.begin(), extra.end());
  write_file(path, data);
}

/// Appends `batches` batches of `per_batch` single-event requests spread over `streams`
/// streams, with payloads "<position>:<padding>"; returns what read_all then gives.
inline std::vector<envelope> fill(journal& j, size_t batches, size_t per_batch, size_t streams,
                                  size_t padding = 40) {
  for (size_t b = 0; b < batches; ++b) {
    std::vector<append_request> batch;
    for (size_t r = 0; r < per_batch; ++r) {
      auto n = j.head_position() + batch.size() + 1;
      batch.push_back(conformance::req(conformance::sid("s", std::to_string(n % streams)),
                                       expected_version::any, 1,
                                       std::to_string(n) + ":" + std::string(padding, 'x')));
    }
    for (auto& r : j.append(std::move(batch))) REQUIRE(r.has_value());
  }
  auto all = j.read_all(1, conformance::all);
  REQUIRE(all.has_value());
  return *all;
}

} // namespace cairn::file_test
