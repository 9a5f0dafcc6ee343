// kafka_consumer: records in, handled one at a time, offsets stored only after the
// handler succeeded (or the record was parked).
#include "cairn/kafka_consumer.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cairn/saga.hpp"
#include "parked_records.hpp"
#include "rdkafka_util.hpp"

namespace cairn {

using namespace kafka_detail;

std::string kafka_record::id() const {
  return topic + "/" + std::to_string(partition) + "/" + std::to_string(offset);
}

metadata kafka_record::command_metadata() const {
  metadata m;
  m.correlation_id = m.causation_id = "kafka:" + id();
  m.entries.emplace_back(std::string{command_id_key}, m.correlation_id);
  return m;
}

const std::string* kafka_record::header(std::string_view name) const {
  for (auto& h : headers)
    if (h.first == name) return &h.second;
  return nullptr;
}

namespace {

kafka_record to_record(const rd_kafka_message_t* msg) {
  kafka_record r;
  r.topic = rd_kafka_topic_name(msg->rkt);
  r.partition = msg->partition;
  r.offset = msg->offset;
  if (msg->key) r.key.assign(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload) r.value.assign(static_cast<const char*>(msg->payload), msg->len);
  rd_kafka_timestamp_type_t tstype;
  r.timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i)
      r.headers.emplace_back(name, value ? std::string(static_cast<const char*>(value), size)
                                         : std::string{});
  }
  return r;
}

bool permanent(const error& e) {
  return is_rejected(e) || is_invalid_argument(e) || is_corrupt(e);
}

} // namespace

struct kafka_consumer::impl {
  kafka_consumer_options opts;
  record_handler handler;
  std::shared_ptr<snapshot_store> parking;
  handle_ptr consumer;

  mutable std::mutex m;
  std::condition_variable wake;
  bool stopping = false;
  kafka_consumer_status st;
  std::vector<parked_record> parked; // guarded by m
  std::thread thread;

  void note_error(std::string what) {
    std::lock_guard<std::mutex> g{m};
    st.last_error = std::move(what);
  }

  bool sleep_unless_stopping(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk{m};
    return wake.wait_for(lk, d, [&] { return stopping; });
  }

  /// One attempt; empty on success, else why it failed (and whether for good).
  std::string attempt(const kafka_record& r, bool& for_good) {
    for_good = false;
    try {
      auto ok = handler(r);
      if (ok) return {};
      for_good = permanent(ok.error());
      return ok.error().describe();
    } catch (const std::exception& ex) {
      return std::string{"the handler threw: "} + ex.what();
    } catch (...) {
      return "the handler threw";
    }
  }

  /// Parks `r` durably; false if asked to stop before it could.
  bool park(const kafka_record& r, std::string reason, uint32_t attempts) {
    parked_record p{r, std::move(reason), attempts, now_ns()};
    std::vector<parked_record> all;
    {
      std::lock_guard<std::mutex> g{m};
      all = parked;
    }
    all.push_back(p);
    auto delay = opts.retry_delay;
    while (parking) {
      auto ok = save_parked(*parking, opts.group, all);
      if (ok) break;
      note_error("parking " + r.id() + ": " + ok.error().describe());
      if (sleep_unless_stopping(delay)) return false;
      delay = std::min(delay * 2, opts.retry_max_delay);
    }
    std::lock_guard<std::mutex> g{m};
    parked.push_back(std::move(p));
    ++st.parked;
    return true;
  }

  /// Handles one record until it succeeds or is parked; false if stopping first
  /// (then its offset is not stored and it will be delivered again).
  bool handle(const kafka_record& r) {
    auto delay = opts.retry_delay;
    for (uint32_t attempt_no = 1;; ++attempt_no) {
      bool for_good = false;
      auto why = attempt(r, for_good);
      if (why.empty()) {
        std::lock_guard<std::mutex> g{m};
        ++st.handled;
        return true;
      }
      {
        std::lock_guard<std::mutex> g{m};
        ++st.failed_attempts;
        st.last_error = r.id() + ": " + why;
      }
      if (for_good || attempt_no >= opts.max_attempts) return park(r, why, attempt_no);
      if (sleep_unless_stopping(delay)) return false;
      delay = std::min(delay * 2, opts.retry_max_delay);
    }
  }

  void run() {
    for (;;) {
      {
        std::lock_guard<std::mutex> g{m};
        if (stopping) break;
      }
      rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer.get(), 100);
      if (!msg) continue;
      if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          note_error(describe(msg->err) + (msg->rkt ? std::string{" on "} +
                                                        rd_kafka_topic_name(msg->rkt)
                                                    : std::string{}));
        rd_kafka_message_destroy(msg);
        continue;
      }
      auto record = to_record(msg);
      if (handle(record)) {
        auto err = rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset);
        if (err) note_error("storing the offset of " + record.id() + ": " + describe(err));
      }
      rd_kafka_message_destroy(msg);
    }
    // Commits the stored offsets and leaves the group.
    if (auto err = rd_kafka_consumer_close(consumer.get()))
      note_error("closing: " + describe(err));
  }
};

kafka_consumer::kafka_consumer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

expected<std::unique_ptr<kafka_consumer>> kafka_consumer::start(
  kafka_consumer_options opts, record_handler handler, std::shared_ptr<snapshot_store> parking) {
  if (opts.group.empty()) return error{errc::invalid_argument, "kafka consumer: no group"};
  if (auto ok = parked_stream(opts.group).validate(); !ok)
    return error{errc::invalid_argument, "kafka consumer group: " + ok.error().message()};
  if (opts.topics.empty()) return error{errc::invalid_argument, "kafka consumer: no topics"};
  if (!handler) return error{errc::invalid_argument, "kafka consumer: no handler"};
  opts.max_attempts = std::max<uint32_t>(opts.max_attempts, 1);
  auto p = std::make_unique<impl>();
  p->opts = std::move(opts);
  p->handler = std::move(handler);
  p->parking = std::move(parking);
  if (p->parking) {
    auto stored = load_parked(*p->parking, p->opts.group);
    if (!stored) return std::move(stored).error();
    p->parked = std::move(*stored);
  }
  auto conf = make_conf(p->opts.kafka,
                        {{"group.id", p->opts.group},
                         {"enable.auto.commit", "true"},
                         {"enable.auto.offset.store", "false"},
                         {"auto.commit.interval.ms", std::to_string(p->opts.commit_interval.count())},
                         {"auto.offset.reset", p->opts.from_beginning ? "earliest" : "latest"}});
  if (!conf) return std::move(conf).error();
  auto h = make_handle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!h) return std::move(h).error();
  p->consumer = std::move(*h);
  rd_kafka_poll_set_consumer(p->consumer.get());
  auto* topics = rd_kafka_topic_partition_list_new(static_cast<int>(p->opts.topics.size()));
  for (auto& t : p->opts.topics)
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(p->consumer.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) return error{errc::invalid_argument, "kafka consumer: subscribe: " + describe(err)};
  p->st.running = true;
  auto* raw = p.get();
  p->thread = std::thread{[raw] { raw->run(); }};
  return std::unique_ptr<kafka_consumer>{new kafka_consumer{std::move(p)}};
}

kafka_consumer::~kafka_consumer() {
  {
    std::lock_guard<std::mutex> g{impl_->m};
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
}

kafka_consumer_status kafka_consumer::status() const {
  std::lock_guard<std::mutex> g{impl_->m};
  auto s = impl_->st;
  s.running = !impl_->stopping;
  return s;
}

std::vector<parked_record> kafka_consumer::parked() const {
  std::lock_guard<std::mutex> g{impl_->m};
  return impl_->parked;
}

expected<std::vector<parked_record>> kafka_consumer::stored_parked(const snapshot_store& parking,
                                                                  const std::string& group) {
  return load_parked(parking, group);
}

} // namespace cairn
