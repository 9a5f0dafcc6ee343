// deposit_driver: the cluster sample's load: deposits to accounts acct-0..N-1 through
// a node, a bounded number at once, each with an idempotency key it keeps across
// retries, so that a command retried after a failover is stored once.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cairn/node.hpp>

#include "bank/account.hpp"

namespace cluster_sample {

struct drive_settings {
  size_t commands = 0; ///< deposits to send (0: none)
  size_t accounts = 200;
  size_t window = 32;  ///< deposits outstanding at once
  std::string ack_file; ///< one line per acknowledged deposit (empty: none)
  /// "any", or "local"/"remote": only accounts whose shard this member holds / does
  /// not hold when the driver starts (the benchmark's forwarded-command cost).
  std::string only = "any";
  /// Start once this many members with the aggregates role are live and the shards
  /// are spread evenly over them (0: at once).
  size_t wait_members = 0;
};

struct drive_stats {
  size_t target = 0, sent = 0, acked = 0, retries = 0, failed = 0;
  bool done = false;
  double max_latency_ms = 0, p50_ms = 0, p99_ms = 0;
};

class deposit_driver {
public:
  /// Drives the accounts for which `keep(account id)` holds (all if it is empty).
  deposit_driver(cairn::node& node, drive_settings s, std::string key_prefix,
                 const std::function<bool(const std::string&)>& keep = {})
      : node_(node), s_(std::move(s)), prefix_(std::move(key_prefix)) {
    if (!s_.ack_file.empty())
      ack_fd_ = ::open(s_.ack_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    for (size_t i = 0; i < s_.accounts; ++i)
      if (!keep || keep(account_id(i))) accounts_.push_back(i);
    for (auto i : accounts_) todo_.push_back(job{i, 0, {}, true});
    for (size_t i = 0; i < s_.commands; ++i) later_.push_back(i + 1);
    thread_ = std::thread([this] { run(); });
  }

  ~deposit_driver() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
    std::unique_lock<std::mutex> guard{mutex_};
    changed_.wait(guard, [this] { return in_flight_ == 0; }); // handlers hold `this`
    if (ack_fd_ >= 0) ::close(ack_fd_);
  }

  drive_stats stats() const {
    std::lock_guard<std::mutex> guard{mutex_};
    drive_stats out = stats_;
    out.target = s_.commands;
    out.max_latency_ms = max_latency_ms_;
    out.p50_ms = percentile(0.50);
    out.p99_ms = percentile(0.99);
    return out;
  }

private:
  using clock = std::chrono::steady_clock;
  struct job {
    size_t account = 0;
    uint64_t seq = 0; // 0: the account's open command
    clock::time_point first_sent{};
    bool open = false;
  };

  // Latencies in buckets 5% wide from 10 us up (the percentiles are that exact), so
  // that a status write costs the same after a million commands as after ten.
  static constexpr double first_bucket_ms = 0.01, growth = 1.05;
  void record_latency(double ms) {
    max_latency_ms_ = std::max(max_latency_ms_, ms);
    size_t b = ms <= first_bucket_ms ? 0 : static_cast<size_t>(std::log(ms / first_bucket_ms) / std::log(growth)) + 1;
    if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
    ++buckets_[b];
    ++latencies_;
  }
  double percentile(double q) const {
    if (latencies_ == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(latencies_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < buckets_.size(); ++b)
      if ((seen += buckets_[b]) >= rank) return std::min(max_latency_ms_, first_bucket_ms * std::pow(growth, b));
    return max_latency_ms_;
  }

  static bool retryable(cairn::errc code) {
    return code == cairn::errc::unavailable || code == cairn::errc::fenced ||
           code == cairn::errc::timeout;
  }

  static std::string account_id(size_t i) { return "acct-" + std::to_string(i); }

  void send(job j) {
    auto id = account_id(j.account);
    if (j.first_sent == clock::time_point{}) j.first_sent = clock::now();
    auto done = [this, j, id](cairn::expected<cairn::command_reply> r) { finished(j, id, r); };
    if (j.open) return node_.send<bank::account>(id, bank::open{"owner-" + id}, done);
    cairn::metadata meta;
    meta.entries.emplace_back("idempotency-key", prefix_ + "-" + std::to_string(j.seq));
    node_.send<bank::account>(id, bank::deposit{amount(j.seq)}, done, std::move(meta));
  }

  static int64_t amount(uint64_t seq) { return 1 + static_cast<int64_t>(seq % 7); }

  void finished(const job& j, const std::string& id, const cairn::expected<cairn::command_reply>& r) {
    std::lock_guard<std::mutex> guard{mutex_};
    --in_flight_;
    if (r) {
      if (j.open) {
        ++opened_;
      } else {
        ++stats_.acked;
        record_latency(std::chrono::duration<double, std::milli>(clock::now() - j.first_sent).count());
        if (ack_fd_ >= 0) {
          auto line = prefix_ + "-" + std::to_string(j.seq) + " " + id + " " +
                      std::to_string(amount(j.seq)) + " " + std::to_string(r->version) + " " +
                      std::to_string(r->position) + "\n";
          (void)!::write(ack_fd_, line.data(), line.size());
        }
      }
    } else if (retryable(r.error().code())) {
      ++stats_.retries;
      retry_.push_back(j);
    } else {
      ++stats_.failed;
      std::fprintf(stderr, "deposit %s-%llu to %s failed for good: %s\n", prefix_.c_str(),
                   static_cast<unsigned long long>(j.seq), id.c_str(), r.error().describe().c_str());
    }
    changed_.notify_all();
  }

  void run() {
    std::unique_lock<std::mutex> guard{mutex_};
    while (!stop_) {
      while (in_flight_ < s_.window) {
        job next;
        if (!retry_.empty()) {
          next = retry_.front();
          retry_.pop_front();
        } else if (!todo_.empty()) {
          next = todo_.front();
          todo_.pop_front();
        } else if (opened_ == accounts_.size() && !later_.empty() && !accounts_.empty()) {
          auto seq = later_.front();
          later_.pop_front();
          next = job{accounts_[(seq * 7919) % accounts_.size()], seq, {}, false};
          ++stats_.sent;
        } else {
          break;
        }
        ++in_flight_;
        guard.unlock();
        send(next);
        guard.lock();
      }
      stats_.done = opened_ == accounts_.size() && (later_.empty() || accounts_.empty()) && retry_.empty() && in_flight_ == 0;
      // Retries wait a little: the cluster is moving the shard or finding its owner.
      changed_.wait_for(guard, std::chrono::milliseconds{retry_.empty() ? 50 : 20});
    }
  }

  cairn::node& node_;
  const drive_settings s_;
  const std::string prefix_;
  int ack_fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<job> todo_, retry_; // opens first, then retries
  std::deque<uint64_t> later_;   // deposits not sent yet
  std::vector<size_t> accounts_; // the accounts driven
  size_t opened_ = 0, in_flight_ = 0;
  drive_stats stats_;
  std::vector<uint64_t> buckets_; // acknowledged deposits per latency bucket
  uint64_t latencies_ = 0;
  double max_latency_ms_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace cluster_sample
