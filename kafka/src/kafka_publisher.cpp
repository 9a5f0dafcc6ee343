// kafka_publisher: committed events out to Kafka, at least once, in order per stream,
// with the position checkpointed only behind what Kafka acknowledged.
#include "cairn/kafka_publisher.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "rdkafka_util.hpp"

namespace cairn {

using namespace kafka_detail;

namespace {

constexpr size_t read_batch = 4096;
constexpr uint8_t pending = 0, done = 1, failed = 2;

stream_id checkpoint_stream(const std::string& name) { return {"kafka_publisher", name}; }

} // namespace

struct kafka_publisher::impl {
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> checkpoints;
  kafka_publisher_options opts;
  event_renderer renderer;
  journal::subscription listener = 0;

  mutable std::mutex m;
  std::condition_variable wake;
  mutable std::condition_variable progressed;
  bool stopping = false;
  uint64_t committed_hint = 0; // the last position the store told us about
  kafka_publisher_status st;   // guarded by m (head is filled in by status())

  // Owned by the publisher thread.
  handle_ptr producer;
  uint64_t acked = 0;          // every position up to here is acknowledged or filtered out
  uint64_t next_read = 1;      // the next position to produce
  std::deque<uint8_t> window;  // state of positions acked+1 .. next_read-1
  std::deque<envelope> buffer; // read from the store, not yet produced
  size_t in_flight = 0;
  bool failing = false;        // a delivery failed: drain, back off, restart at acked+1
  std::chrono::milliseconds delay{0};
  uint64_t saved = 0;
  std::chrono::steady_clock::time_point last_save = std::chrono::steady_clock::now();
  std::thread thread;

  void note_error(std::string what) {
    std::lock_guard<std::mutex> g{m};
    st.last_error = std::move(what);
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    auto position = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
    --self->in_flight;
    bool ok = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (position > self->acked && position - self->acked - 1 < self->window.size())
      self->window[position - self->acked - 1] = ok ? done : failed;
    std::lock_guard<std::mutex> g{self->m};
    if (ok) {
      ++self->st.delivered;
    } else {
      ++self->st.failed;
      self->failing = true;
      self->st.last_error = "delivery of position " + std::to_string(position) +
                            " failed: " + describe(msg->err);
    }
  }

  static void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
    static_cast<impl*>(opaque)->note_error(
      std::string{rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))} + ": " + reason);
  }

  expected<void> make_producer() {
    auto conf = make_conf(
      opts.kafka, {{"enable.idempotence", "true"},
                   {"enable.gapless.guarantee", "true"},
                   {"message.timeout.ms", std::to_string(opts.delivery_timeout.count())},
                   {"queue.buffering.max.messages",
                    std::to_string(std::max<size_t>(opts.max_in_flight, 1000))}});
    if (!conf) return std::move(conf).error();
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &impl::on_delivery);
    rd_kafka_conf_set_error_cb(conf->get(), &impl::on_error);
    rd_kafka_conf_set_opaque(conf->get(), this);
    auto h = make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
    if (!h) return std::move(h).error();
    producer = std::move(*h);
    return {};
  }

  /// Produces one event; false if librdkafka's queue is full or the producer failed.
  bool produce(const envelope& e) {
    auto r = renderer.render(e);
    auto topic = opts.kafka.topic_for(e.stream.category);
    auto key = e.stream.str();
    rd_kafka_headers_t* h = rd_kafka_headers_new(10);
    auto add = [&](const char* name, const std::string& value) {
      rd_kafka_header_add(h, name, -1, value.data(), static_cast<ssize_t>(value.size()));
    };
    add("cairn.type", r.type);
    add("cairn.schema_version", std::to_string(r.schema_version));
    add("cairn.stream", key);
    add("cairn.version", std::to_string(e.version));
    add("cairn.position", std::to_string(e.position));
    add("cairn.timestamp_ns", std::to_string(e.timestamp_ns));
    if (!e.meta.correlation_id.empty()) add("cairn.correlation_id", e.meta.correlation_id);
    if (!e.meta.causation_id.empty()) add("cairn.causation_id", e.meta.causation_id);
    for (auto& [k, v] : e.meta.entries) add(("cairn.meta." + k).c_str(), v);
    if (!r.render_error.empty()) add("cairn.render_error", r.render_error);
    add("content-type", r.content_type);
    auto err = rd_kafka_producev(
      producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
      RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(e.timestamp_ns / 1000000),
      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(uintptr_t{e.position})),
      RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true; // librdkafka owns the headers now
    rd_kafka_headers_destroy(h);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      failing = true;
      note_error("producing position " + std::to_string(e.position) + " failed: " + describe(err));
    }
    return false;
  }

  /// Reads and produces what the store has beyond next_read, up to max_in_flight.
  void fill() {
    uint64_t produced = 0;
    while (!failing && in_flight < opts.max_in_flight) {
      if (buffer.empty()) {
        if (store->head_position() < next_read) break;
        auto chunk = store->read_all(next_read, read_batch);
        if (!chunk) {
          note_error("reading the store: " + chunk.error().describe());
          break;
        }
        if (chunk->empty()) break;
        for (auto& e : *chunk) buffer.push_back(std::move(e));
      }
      auto& e = buffer.front();
      if (opts.filter.matches(e)) {
        window.push_back(pending);
        if (!produce(e)) {
          window.pop_back();
          break;
        }
        ++in_flight;
        ++produced;
      } else {
        window.push_back(done);
      }
      next_read = e.position + 1;
      buffer.pop_front();
    }
    if (produced) {
      std::lock_guard<std::mutex> g{m};
      st.produced += produced;
    }
  }

  void advance() {
    uint64_t first = acked + 1;
    while (!window.empty() && window.front() == done) {
      window.pop_front();
      ++acked;
    }
    if (acked < first) return;
    if (opts.on_acknowledged) opts.on_acknowledged(first, acked);
    {
      std::lock_guard<std::mutex> g{m};
      st.acknowledged = acked;
    }
    progressed.notify_all();
  }

  void save_checkpoint(bool force) {
    if (!checkpoints || acked == saved) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_save < opts.checkpoint_interval) return;
    last_save = now;
    snapshot s{checkpoint_stream(opts.name), acked, "position", 1, now_ns(), {}};
    if (auto ok = checkpoints->save(s); !ok) {
      note_error("storing the checkpoint: " + ok.error().describe());
      return;
    }
    saved = acked;
    std::lock_guard<std::mutex> g{m};
    st.checkpoint = saved;
  }

  /// Waits up to `d` unless stopping; true if stopping.
  bool sleep_unless_stopping(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk{m};
    return wake.wait_for(lk, d, [&] { return stopping; });
  }

  /// After a failed delivery, once nothing is in flight: back off and produce again
  /// from the first position not acknowledged, on a new producer if this one failed
  /// for good. Returns false if asked to stop meanwhile.
  bool restart() {
    if (rd_kafka_fatal_error(producer.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      producer.reset();
      in_flight = 0;
    }
    window.clear();
    buffer.clear();
    next_read = acked + 1;
    delay = delay.count() == 0 ? opts.retry_delay : std::min(delay * 2, opts.retry_max_delay);
    {
      std::lock_guard<std::mutex> g{m};
      ++st.restarts;
    }
    if (sleep_unless_stopping(delay)) return false;
    while (!producer) {
      if (auto ok = make_producer(); !ok) {
        note_error(ok.error().describe());
        if (sleep_unless_stopping(opts.retry_max_delay)) return false;
      }
    }
    failing = false;
    return true;
  }

  void run() {
    for (;;) {
      {
        std::lock_guard<std::mutex> g{m};
        if (stopping) break;
      }
      if (!failing) fill();
      if (in_flight > 0) rd_kafka_poll(producer.get(), 1);
      advance();
      save_checkpoint(false);
      if (failing) {
        if (in_flight > 0 &&
            rd_kafka_fatal_error(producer.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
          rd_kafka_purge(producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        if (in_flight == 0 && !restart()) break;
        continue;
      }
      if (window.empty() && delay.count() > 0) delay = {};
      if (in_flight == 0 && buffer.empty()) {
        std::unique_lock<std::mutex> lk{m};
        wake.wait_for(lk, std::chrono::milliseconds{50},
                      [&] { return stopping || committed_hint >= next_read; });
      }
    }
    // Stopping: give what is in flight a chance to be acknowledged, then checkpoint.
    auto give_up = std::chrono::steady_clock::now() + opts.delivery_timeout;
    while (producer && in_flight > 0 && std::chrono::steady_clock::now() < give_up) {
      rd_kafka_poll(producer.get(), 10);
      advance();
    }
    if (producer && in_flight > 0) {
      rd_kafka_purge(producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(producer.get(), 0);
    }
    advance();
    save_checkpoint(true);
  }
};

kafka_publisher::kafka_publisher(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

expected<std::unique_ptr<kafka_publisher>> kafka_publisher::start(
  std::shared_ptr<journal> store, std::shared_ptr<snapshot_store> checkpoints,
  kafka_publisher_options opts, event_renderer renderer) {
  if (!store) return error{errc::invalid_argument, "kafka publisher: no store"};
  if (auto ok = checkpoint_stream(opts.name).validate(); !ok)
    return error{errc::invalid_argument, "kafka publisher name: " + ok.error().message()};
  if (opts.max_in_flight == 0) opts.max_in_flight = 1;
  auto p = std::make_unique<impl>();
  p->store = std::move(store);
  p->checkpoints = std::move(checkpoints);
  p->opts = std::move(opts);
  p->renderer = std::move(renderer);
  uint64_t start_after = 0;
  if (p->checkpoints) {
    auto stored = stored_checkpoint(*p->checkpoints, p->opts.name);
    if (!stored) return std::move(stored).error();
    start_after = *stored;
    if (start_after == 0 && !p->opts.from_beginning) start_after = p->store->head_position();
  } else if (!p->opts.from_beginning) {
    start_after = p->store->head_position();
  }
  p->acked = p->saved = start_after;
  p->next_read = start_after + 1;
  p->st.acknowledged = p->st.checkpoint = start_after;
  p->st.running = true;
  if (auto ok = p->make_producer(); !ok) return std::move(ok).error();
  auto* raw = p.get();
  p->listener = p->store->subscribe([raw](const std::vector<envelope>& batch) {
    if (batch.empty()) return;
    {
      std::lock_guard<std::mutex> g{raw->m};
      raw->committed_hint = batch.back().position;
    }
    raw->wake.notify_one();
  });
  p->thread = std::thread{[raw] { raw->run(); }};
  return std::unique_ptr<kafka_publisher>{new kafka_publisher{std::move(p)}};
}

kafka_publisher::~kafka_publisher() {
  impl_->store->unsubscribe(impl_->listener);
  {
    std::lock_guard<std::mutex> g{impl_->m};
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
  impl_->producer.reset();
}

kafka_publisher_status kafka_publisher::status() const {
  std::lock_guard<std::mutex> g{impl_->m};
  auto s = impl_->st;
  s.head = impl_->store->head_position();
  s.lag = s.head > s.acknowledged ? s.head - s.acknowledged : 0;
  s.running = !impl_->stopping;
  return s;
}

bool kafka_publisher::wait_until_acknowledged(uint64_t position,
                                              std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lk{impl_->m};
  return impl_->progressed.wait_for(lk, timeout,
                                    [&] { return impl_->st.acknowledged >= position; });
}

expected<uint64_t> kafka_publisher::stored_checkpoint(const snapshot_store& checkpoints,
                                                      const std::string& name) {
  auto s = checkpoints.load(checkpoint_stream(name));
  if (!s) {
    if (is_corrupt(s.error())) return uint64_t{0}; // damaged: start over (at least once)
    return error{errc::unavailable, "kafka publisher " + name + ": reading the checkpoint: " +
                                      s.error().describe()};
  }
  return *s ? (*s)->version : uint64_t{0};
}

} // namespace cairn
