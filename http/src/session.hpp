// One HTTP connection: reads requests within the configured limits and deadlines,
// checks credentials, routes them (api.hpp), writes responses, and can turn into
// a Server-Sent Events stream. One template for plain TCP and for TLS (CRTP).
#pragma once

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "api.hpp"
#include "io_runtime.hpp"

namespace cairn::http {

namespace bhttp = beast::http;

/// Compares without an early exit, so timing does not tell how much of a token matched.
inline bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

/// True for Beast's "the bytes are not HTTP" errors (as opposed to I/O errors).
inline bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

template <class Derived>
class session : public sse_target,
                public reply_target,
                public std::enable_shared_from_this<session<Derived>> {
public:
  explicit session(http_server::impl& s) : s_(s), heartbeat_(s.io->io) { ++s_.connections; }
  ~session() override { --s_.connections; }

  void wake() override {
    asio::post(lowest().get_executor(), [self = this->shared_from_this()] { self->pump(); });
  }

protected:
  Derived& derived() { return static_cast<Derived&>(*this); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(derived().stream()); }
  std::shared_ptr<session> self() { return this->shared_from_this(); }

  void do_read() {
    parser_.emplace();
    parser_->eager(true);
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(s_.opts.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(s_.opts.max_body_bytes);
    started_ = buffer_.size() > 0;
    if (started_) {
      first_ = false;
      lowest().expires_after(s_.opts.header_timeout);
      return parse();
    }
    // Waiting for a request's first byte: the idle deadline (the header deadline on
    // a new connection); from that byte on, the whole request has header_timeout.
    lowest().expires_after(first_ ? s_.opts.header_timeout : s_.opts.idle_timeout);
    read_more();
  }

  void read_more() {
    derived().stream().async_read_some(buffer_.prepare(read_chunk), [self = self()](
                                                                      beast::error_code ec,
                                                                      size_t n) {
      if (ec) return self->derived().do_close(); // closed, timed out, reset
      self->buffer_.commit(n);
      if (!self->started_) {
        self->started_ = true;
        self->first_ = false;
        self->lowest().expires_after(self->s_.opts.header_timeout);
      }
      self->parse();
    });
  }

  /// Feeds what has been read to the parser; reads more until a request is whole.
  void parse() {
    beast::error_code ec;
    while (!parser_->is_done() && buffer_.size() > 0) {
      auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec) return on_read(ec);
      if (used == 0) break;
    }
    if (parser_->is_done()) return on_read({});
    read_more();
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::body_limit)
      return fail(error_response(413, "payload_too_large",
                                 "the body exceeds " + std::to_string(s_.opts.max_body_bytes) +
                                   " bytes"));
    if (ec == bhttp::error::header_limit)
      return fail(error_response(431, "header_too_large",
                                 "the request header exceeds " +
                                   std::to_string(s_.opts.max_header_bytes) + " bytes"));
    if (ec && is_parse_error(ec))
      return fail(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
    if (ec) return derived().do_close();
    lowest().expires_never();
    auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    if (!authorized(req))
      return write(error_response(401, "unauthorized", "missing or wrong bearer token"), true);
    api_request r;
    r.method = std::string{req.method_string()};
    r.target = std::string{req.target()};
    auto field = [&](auto name) { return std::string{req[name]}; };
    r.content_type = field(bhttp::field::content_type);
    r.correlation_id = field("X-Correlation-Id");
    r.causation_id = field("X-Causation-Id");
    r.idempotency_key = field("Idempotency-Key");
    r.last_event_id = field("Last-Event-ID");
    r.body = std::move(req.body());
    // The node may answer after the server stopped: the reply keeps the server's
    // state (and so the io_context) alive until it has handed the session back.
    auto sse = route(s_, std::move(r), reply_to{s_.shared_from_this(), self()});
    if (sse) start_sse(std::move(*sse));
  }

  /// The node's answer, on an I/O thread (io_runtime::drain_replies): written now
  /// with one I/O thread, else on this session's strand.
  void answer(api_response res) override {
    if (!s_.io->strands) return write(std::move(res), !keep_alive_);
    asio::post(lowest().get_executor(), [self = self(), res = std::move(res)]() mutable {
      self->write(std::move(res), !self->keep_alive_);
    });
  }

  /// The responder of a request: hands the answer back to the I/O threads.
  struct reply_to {
    std::shared_ptr<http_server::impl> keep;
    std::shared_ptr<session> self;
    ~reply_to() { self.reset(); } // the session goes before the state it uses
    void operator()(api_response res) { keep->io->hand_back(std::move(self), std::move(res)); }
  };

  bool authorized(const bhttp::request<bhttp::string_body>& req) const {
    if (s_.opts.bearer_token.empty()) return true;
    auto auth = req[bhttp::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    if (auth.size() < scheme.size() || !beast::iequals(auth.substr(0, scheme.size()), scheme))
      return false;
    auto given = auth.substr(scheme.size());
    return same_secret({given.data(), given.size()}, s_.opts.bearer_token);
  }

  /// Answers a request that could not be read whole, and closes.
  void fail(api_response res) { write(std::move(res), true); }

  void write(api_response r, bool close) {
    // The whole response in one reused buffer, one write: cheaper than Beast's
    // serializer for these small answers.
    auto& out = wbuf_;
    out.clear();
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    out.append(version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(r.status));
    out.append(" ").append(reason.data(), reason.size());
    out.append("\r\nServer: cairn\r\nContent-Type: ").append(r.content_type);
    out.append("\r\nCache-Control: no-store\r\n");
    if (r.status == 401) out.append("WWW-Authenticate: Bearer\r\n");
    if (close && version_ != 10) out.append("Connection: close\r\n");
    if (!close && version_ == 10) out.append("Connection: keep-alive\r\n");
    out.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n\r\n");
    out.append(r.body);
    lowest().expires_after(s_.opts.write_timeout);
    asio::async_write(derived().stream(), asio::buffer(out),
                      [self = self(), close](beast::error_code ec, size_t) {
                        if (ec || close) return self->derived().do_close();
                        self->lowest().expires_never();
                        self->do_read();
                      });
  }

  // -- the event stream --

  void start_sse(sse_request r) {
    sse_ = true;
    next_ = r.from;
    categories_ = std::move(r.categories);
    out_ = "HTTP/1.1 200 OK\r\nServer: cairn\r\nContent-Type: text/event-stream\r\n"
           "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
           "retry: 1000\n\n";
    s_.io->add_sse(std::weak_ptr<sse_target>{this->shared_from_this()});
    watch_client();
    arm_heartbeat();
    send_out();
  }

  /// The client sends nothing on an event stream: a read that ends means it left.
  void watch_client() {
    derived().stream().async_read_some(asio::buffer(sink_), [self = self()](beast::error_code ec,
                                                                            size_t) {
      if (ec) return self->stop_sse();
      self->watch_client();
    });
  }

  void arm_heartbeat() {
    heartbeat_.expires_after(s_.opts.sse_heartbeat);
    heartbeat_.async_wait([self = self()](beast::error_code ec) {
      if (ec || self->closed_) return;
      if (!self->writing_) {
        self->out_ = ": keep-alive\n\n";
        self->send_out();
      }
      self->arm_heartbeat();
    });
  }

  /// Writes whatever events the client has not seen yet (up to 64 KiB at a time).
  void pump() {
    if (closed_ || writing_ || !sse_) return;
    auto& store = *s_.target.store();
    auto head = store.head_position();
    out_.clear();
    size_t scanned = 0;
    while (next_ <= head && out_.size() < 65536 && scanned < 8192) {
      auto batch = store.read_all(next_, 512);
      if (!batch || batch->empty()) break;
      for (auto& e : *batch) {
        ++scanned;
        next_ = e.position + 1;
        if (!categories_.empty() &&
            std::find(categories_.begin(), categories_.end(), e.stream.category) ==
              categories_.end())
          continue;
        out_ += "id: " + std::to_string(e.position) + "\ndata: " + event_json(s_, e) + "\n\n";
      }
    }
    if (!out_.empty()) return send_out();
    if (next_ <= head) wake(); // skipped a long run of other categories: go on later
  }

  void send_out() {
    writing_ = true;
    lowest().expires_after(s_.opts.write_timeout);
    asio::async_write(derived().stream(), asio::buffer(out_),
                      [self = self()](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->stop_sse();
                        self->lowest().expires_never();
                        self->pump();
                      });
  }

  void stop_sse() {
    if (closed_) return;
    closed_ = true;
    heartbeat_.cancel();
    derived().do_close();
  }

  static constexpr size_t read_chunk = 4096;

  http_server::impl& s_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string wbuf_; ///< the response being written
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool first_ = true;   ///< no request read yet on this connection
  bool started_ = false; ///< the current request's first byte has come
  // event stream
  bool sse_ = false, writing_ = false, closed_ = false;
  uint64_t next_ = 1;
  std::vector<std::string> categories_;
  std::string out_;
  asio::steady_timer heartbeat_;
  char sink_[256];
};

class plain_session final : public session<plain_session> {
public:
  plain_session(http_server::impl& s, tcp::socket sock)
      : session(s), stream_(std::move(sock)) {}
  beast::tcp_stream& stream() { return stream_; }
  void run() { do_read(); }
  void do_close() {
    closed_ = true;
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

private:
  beast::tcp_stream stream_;
};

class tls_session final : public session<tls_session> {
public:
  tls_session(http_server::impl& s, tcp::socket sock, asio::ssl::context& ctx)
      : session(s), stream_(std::move(sock), ctx) {}
  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
  void run() {
    lowest().expires_after(s_.opts.header_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared()](beast::error_code ec) {
                              if (ec) return self->lowest().close(); // no or a bad client certificate
                              self->do_read();
                            });
  }
  void do_close() {
    if (shut_) return;
    shut_ = closed_ = true;
    heartbeat_.cancel();
    lowest().expires_after(std::chrono::seconds{1});
    stream_.async_shutdown([self = shared()](beast::error_code) { self->lowest().close(); });
  }

private:
  std::shared_ptr<tls_session> shared() {
    return std::static_pointer_cast<tls_session>(shared_from_this());
  }
  beast::ssl_stream<beast::tcp_stream> stream_;
  bool shut_ = false;
};

} // namespace cairn::http
