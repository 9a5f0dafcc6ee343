// http_server: the listener, its I/O threads and TLS set-up; sessions are in
// session.hpp. The only translation unit of cairn::http that compiles Beast.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "session.hpp"

namespace cairn {
namespace http {

void io_runtime_deleter::operator()(io_runtime* rt) const { delete rt; }

namespace {

/// Answers a connection over the cap with 503 and closes it (plain TCP only; a TLS
/// connection over the cap is closed at once).
void refuse(tcp::socket sock, const http_options& opts) {
  static const std::string text =
    "HTTP/1.1 503 Service Unavailable\r\nServer: cairn\r\nContent-Type: application/json\r\n"
    "Connection: close\r\nContent-Length: 76\r\n\r\n"
    "{\"error\":\"unavailable\",\"message\":\"too many connections, try again later\"}\n";
  auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
  if (opts.tls()) return stream->close();
  stream->expires_after(std::chrono::seconds{1});
  asio::async_write(*stream, asio::buffer(text), [stream](beast::error_code, size_t) {
    beast::error_code ec;
    stream->socket().shutdown(tcp::socket::shutdown_send, ec);
    stream->close();
  });
}

void do_accept(http_server::impl& s) {
  auto& rt = *s.io;
  auto on_accept = [&s](beast::error_code ec, tcp::socket sock) {
    auto& rt = *s.io;
    if (ec == asio::error::operation_aborted || !rt.acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or similar: wait a little instead of spinning.
      spdlog::warn("cairn http: accept failed: {}", ec.message());
      rt.accept_backoff.expires_after(std::chrono::milliseconds{100});
      rt.accept_backoff.async_wait([&s](beast::error_code) { do_accept(s); });
      return;
    }
    if (s.connections.load() >= s.opts.max_connections) refuse(std::move(sock), s.opts);
    else if (rt.tls) std::make_shared<tls_session>(s, std::move(sock), *rt.tls)->run();
    else std::make_shared<plain_session>(s, std::move(sock))->run();
    do_accept(s);
  };
  // One I/O thread runs every handler itself: a strand per connection would only cost.
  if (rt.strands) rt.acceptor.async_accept(asio::make_strand(rt.io), std::move(on_accept));
  else rt.acceptor.async_accept(rt.io.get_executor(), std::move(on_accept));
}

expected<void> setup_tls(io_runtime& rt, const http_options& opts) {
  namespace ssl = asio::ssl;
  try {
    rt.tls.emplace(ssl::context::tls_server);
    rt.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                        ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    rt.tls->use_certificate_chain_file(opts.tls_cert_file);
    rt.tls->use_private_key_file(opts.tls_key_file, ssl::context::pem);
    if (!opts.tls_client_ca_file.empty()) {
      rt.tls->load_verify_file(opts.tls_client_ca_file);
      rt.tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
  } catch (const std::exception& ex) {
    return error{errc::unavailable, std::string{"cairn http: TLS set-up failed: "} + ex.what()};
  }
  return {};
}

} // namespace
} // namespace http

http_server::http_server(node& n, http_options opts)
    : impl_(std::make_shared<impl>(n, std::move(opts))) {}

http_server::~http_server() { stop(); }

const http_options& http_server::options() const { return impl_->opts; }

size_t http_server::connections() const { return impl_->connections.load(); }

uint16_t http_server::port() const { return impl_->io ? impl_->io->port : 0; }

void http_server::add_command_parser(std::string category, command_parser parse) {
  impl_->parsers[std::move(category)] = std::move(parse);
}
void http_server::add_event_renderer(std::string category, event_renderer render) {
  impl_->renderers[std::move(category)] = std::move(render);
}
void http_server::add_query_runner(std::string name, query_runner run) {
  impl_->queries[std::move(name)] = std::move(run);
}
void http_server::watch_projection(std::string projection) {
  auto& w = impl_->watched_projections;
  if (std::find(w.begin(), w.end(), projection) == w.end()) w.push_back(std::move(projection));
}

expected<void> http_server::start() {
  using namespace http;
  auto& s = *impl_;
  if (s.io) return error{errc::invalid_argument, "cairn http: already started"};
  if (auto ok = validate(s.opts); !ok) return ok;
  if (!is_loopback_address(s.opts.address) && s.opts.bearer_token.empty() &&
      s.opts.tls_client_ca_file.empty())
    spdlog::warn("cairn http: serving {} without credentials (insecure = true): anyone who "
                 "reaches it can send commands",
                 s.opts.address);
  s.io.reset(new io_runtime(s.opts.threads));
  auto& rt = *s.io;
  if (s.opts.tls())
    if (auto ok = setup_tls(rt, s.opts); !ok) {
      s.io.reset();
      return ok;
    }
  beast::error_code ec;
  auto addr = asio::ip::make_address(s.opts.address == "localhost" ? "127.0.0.1" : s.opts.address, ec);
  if (ec) {
    s.io.reset();
    return error{errc::invalid_argument, "cairn http: bad address " + s.opts.address};
  }
  tcp::endpoint ep{addr, s.opts.port};
  rt.acceptor.open(ep.protocol(), ec);
  if (!ec) rt.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) rt.acceptor.bind(ep, ec);
  if (!ec) rt.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.io.reset();
    return error{errc::unavailable, "cairn http: cannot listen on " + s.opts.address + ":" +
                                      std::to_string(s.opts.port) + ": " + ec.message()};
  }
  rt.port = rt.acceptor.local_endpoint().port();
  // Event streams wake on commits; the listener runs on the journal's thread, so it
  // only posts. It holds the state, which keeps the io_context alive for its posts.
  std::weak_ptr<impl> weak = impl_;
  s.listener = s.target.store()->subscribe([weak](const std::vector<envelope>& batch) {
    if (auto st = weak.lock(); st && st->io && !batch.empty()) {
      st->head.store(batch.back().position, std::memory_order_relaxed);
      st->io->wake_all();
    }
  });
  s.run_blocking = [&rt](std::function<void()> work) { asio::post(rt.blocking, std::move(work)); };
  s.submit_command = [&rt, &n = s.target](command_message cmd, reply_handler on_reply) {
    rt.submit(n, std::move(cmd), std::move(on_reply));
  };
  s.listening = true;
  do_accept(s);
  for (size_t i = 0; i < s.opts.threads; ++i) rt.threads.emplace_back([&rt] { rt.io.run(); });
  spdlog::info("cairn http: listening on {}:{}{}", s.opts.address, rt.port,
               s.opts.tls() ? " (TLS)" : "");
  return {};
}

void http_server::stop() {
  using namespace http;
  auto& s = *impl_;
  if (!s.io || !s.listening) return;
  s.listening = false;
  s.target.store()->unsubscribe(s.listener);
  auto& rt = *s.io;
  asio::post(rt.io, [&rt] {
    beast::error_code ec;
    rt.acceptor.close(ec);
  });
  rt.io.stop();
  for (auto& t : rt.threads) t.join();
  rt.threads.clear();
  rt.blocking.join(); // a scrape under way finishes; its answer is dropped
  // Commands not yet sent go unanswered: their connections close with the server
  // (their handlers hold the state: dropping them here breaks that cycle).
  std::vector<std::pair<command_message, reply_handler>> unsent;
  {
    std::lock_guard<std::mutex> g{rt.command_mutex};
    unsent.swap(rt.commands);
  }
  unsent.clear();
  beast::error_code ec;
  rt.acceptor.close(ec);
  // Sessions still waiting for the node keep the state (and the io_context) alive
  // until their replies come; the rest go with it.
}

} // namespace cairn
