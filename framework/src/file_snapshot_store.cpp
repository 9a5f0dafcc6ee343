// The file snapshot store: one checksummed file per stream, replaced atomically.
//
// File layout: "CSNP", CRC32C of the body (4 bytes, little-endian), then the body:
// the snapshot encoded with Cairn's binary codec (docs/encoding.md) as
// {stream, version, type, schema_version, timestamp_ns, state}. Files are written
// to a temporary name and renamed over the old one, without fsync: a snapshot lost
// or torn by a crash fails its checksum, reads as corrupt, and recovery replays
// the stream instead. A crash during a save leaves its temporary file behind
// ("<name>.snap.tmp-<pid>-<thread>"): opening the store removes such files.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cairn/codec.hpp"
#include "cairn/snapshot_store.hpp"
#include "crc32c.hpp"

namespace cairn {

namespace {

struct snapshot_record {
  std::string stream;
  uint64_t version = 0;
  std::string type;
  uint32_t schema_version = 0;
  int64_t timestamp_ns = 0;
  bytes state;
};

auto describe(type<snapshot_record>) {
  return schema<snapshot_record>(
    "cairn.snapshot", 1, field("stream", &snapshot_record::stream),
    field("version", &snapshot_record::version), field("type", &snapshot_record::type),
    field("schema_version", &snapshot_record::schema_version),
    field("timestamp_ns", &snapshot_record::timestamp_ns), field("state", &snapshot_record::state));
}

constexpr char magic[4] = {'C', 'S', 'N', 'P'};

/// What a temporary file's name holds: "<snapshot file name>.tmp-<writer>".
constexpr const char* temp_marker = ".tmp-";

/// Removes the temporary files of saves that a crash interrupted.
expected<void> remove_temp_files(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it{dir, ec}, end;
  for (; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    auto mark = name.find(temp_marker);
    if (mark == std::string::npos || mark < 5 || name.compare(mark - 5, 5, ".snap") != 0) continue;
    std::error_code removed;
    std::filesystem::remove(it->path(), removed);
    if (removed)
      return error{errc::unavailable, "cannot remove the unfinished snapshot file " +
                                        it->path().string() + ": " + removed.message()};
  }
  if (ec) return error{errc::unavailable, "cannot list snapshot folder " + dir.string() + ": " + ec.message()};
  return {};
}

std::string hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

/// The snapshot record in file `path` (nullopt if there is no such file).
expected<std::optional<snapshot_record>> read_record(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return std::optional<snapshot_record>{};
  std::string content{std::istreambuf_iterator<char>{in}, {}};
  if (content.size() < 8 || content.compare(0, 4, magic, 4) != 0)
    return error{errc::corrupt, "snapshot file " + path.string() + " has no valid header"};
  auto p = reinterpret_cast<const uint8_t*>(content.data());
  uint32_t stored = p[4] | (p[5] << 8) | (p[6] << 16) | (static_cast<uint32_t>(p[7]) << 24);
  if (detail::crc32c(p + 8, content.size() - 8) != stored)
    return error{errc::corrupt, "snapshot file " + path.string() + " fails its checksum"};
  auto record = decode<snapshot_record>(p + 8, content.size() - 8);
  if (!record)
    return error{errc::corrupt, "snapshot file " + path.string() + ": " + record.error().message()};
  return std::optional<snapshot_record>{std::move(*record)};
}

class file_snapshot_store final : public snapshot_store {
public:
  explicit file_snapshot_store(std::filesystem::path dir) : dir_(std::move(dir)) {}

  expected<void> save(const snapshot& s) override {
    auto body = encode(snapshot_record{s.stream.str(), s.version, s.type, s.schema_version,
                                       s.timestamp_ns, s.state});
    auto crc = detail::crc32c(body.data(), body.size());
    uint8_t crc_bytes[4] = {static_cast<uint8_t>(crc), static_cast<uint8_t>(crc >> 8),
                            static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 24)};
    auto path = path_of(s.stream);
    std::ostringstream tid;
    tid << ::getpid() << '-' << std::this_thread::get_id();
    auto tmp = path;
    tmp += temp_marker + tid.str();
    {
      std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
      out.write(magic, 4);
      out.write(reinterpret_cast<const char*>(crc_bytes), 4);
      out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
      if (!out.flush()) {
        out.close();
        std::error_code ignored;
        std::filesystem::remove(tmp, ignored);
        return error{errc::unavailable, "cannot write snapshot file " + tmp.string()};
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::filesystem::remove(tmp, ec);
      return error{errc::unavailable, "cannot rename snapshot into " + path.string()};
    }
    return {};
  }

  expected<std::optional<snapshot>> load(const stream_id& stream) const override {
    auto record = read_record(path_of(stream));
    if (!record) return record.error();
    if (!*record || (*record)->stream != stream.str())
      return std::optional<snapshot>{}; // none, or a name clash
    auto& r = **record;
    return std::optional<snapshot>{snapshot{stream, r.version, std::move(r.type),
                                            r.schema_version, r.timestamp_ns,
                                            std::move(r.state)}};
  }

private:
  /// Hex of the stream name; long names are cut and made unique by their checksum
  /// (the file also holds the full name, checked on load).
  std::filesystem::path path_of(const stream_id& stream) const {
    auto name = stream.str();
    if (name.size() <= 100) return dir_ / (hex(name) + ".snap");
    auto h = detail::crc32c(name.data(), name.size());
    return dir_ / (hex(std::string_view{name}.substr(0, 100)) + "-" + std::to_string(h) + "-" +
                   std::to_string(name.size()) + ".snap");
  }

  std::filesystem::path dir_;
};

} // namespace

expected<std::shared_ptr<snapshot_store>> open_file_snapshot_store(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return error{errc::unavailable, "cannot create snapshot folder " + dir + ": " + ec.message()};
  if (auto cleaned = remove_temp_files(dir); !cleaned) return std::move(cleaned).error();
  return std::shared_ptr<snapshot_store>{std::make_shared<file_snapshot_store>(dir)};
}

expected<std::vector<snapshot>> read_file_snapshots(const std::string& dir,
                                                    const std::string& prefix) {
  // File names are the hex of the stream name (its first 100 bytes for long ones).
  auto wanted = hex(std::string_view{prefix}.substr(0, 50));
  std::vector<snapshot> out;
  std::error_code ec;
  std::filesystem::directory_iterator it{dir, ec}, end;
  for (; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.compare(0, wanted.size(), wanted) != 0 || name.size() < 5 ||
        name.compare(name.size() - 5, 5, ".snap") != 0)
      continue;
    auto record = read_record(it->path());
    if (!record) return record.error();
    if (!*record || (*record)->stream.compare(0, prefix.size(), prefix) != 0) continue;
    auto& r = **record;
    auto stream = stream_id::parse(r.stream);
    if (!stream)
      return error{errc::corrupt, "snapshot file " + it->path().string() + ": " +
                                    stream.error().message()};
    out.push_back(snapshot{std::move(*stream), r.version, std::move(r.type), r.schema_version,
                           r.timestamp_ns, std::move(r.state)});
  }
  if (ec) return error{errc::unavailable, "cannot list snapshot folder " + dir + ": " + ec.message()};
  return out;
}

} // namespace cairn
