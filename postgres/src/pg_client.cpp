// pg_client: the connection pool and its I/O thread.
#include "pg_client.hpp"

#include <future>

#include <boost/asio/post.hpp>

namespace cairn::pg {

lease::~lease() {
  if (!link_ || !owner_) return;
  if (pooled_) {
    owner_->give_back(std::move(link_));
    return;
  }
  // Dropped on the I/O thread, after any cancelled wait of it has run there.
  boost::asio::post(owner_->io(), [dead = std::shared_ptr<link>(std::move(link_))] {});
}

void lease::discard() {
  if (!link_) return;
  boost::asio::post(owner_->io(), [dead = std::shared_ptr<link>(std::move(link_))] {});
  if (pooled_) owner_->forget();
}

pipeline_outcome lease::run(std::vector<query> queries) {
  std::promise<pipeline_outcome> promise;
  auto future = promise.get_future();
  boost::asio::post(owner_->io(), [&] {
    link_->async_run(std::move(queries),
                     [&promise](pipeline_outcome out) { promise.set_value(std::move(out)); });
  });
  return future.get();
}

bool lease::alive() {
  std::promise<bool> promise;
  auto future = promise.get_future();
  boost::asio::post(owner_->io(), [&] { promise.set_value(link_->check_alive()); });
  return future.get();
}

std::future<pipeline_outcome> lease::start(std::vector<query> queries) {
  auto promise = std::make_shared<std::promise<pipeline_outcome>>();
  auto future = promise->get_future();
  boost::asio::post(owner_->io(), [l = link_.get(), promise, qs = std::move(queries)]() mutable {
    l->async_run(std::move(qs), [promise](pipeline_outcome out) { promise->set_value(std::move(out)); });
  });
  return future;
}

pipeline_outcome lease::run(query q) {
  std::vector<query> qs;
  qs.push_back(std::move(q));
  return run(std::move(qs));
}

client::client(std::string conninfo, const postgres_options& options, size_t max_links)
    : conninfo_(std::move(conninfo)), options_(options), max_links_(std::max<size_t>(1, max_links)),
      work_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

client::~client() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.clear();
  }
  work_.reset();
  io_.stop();
  thread_.join();
  io_.restart(); // drop the links still queued for dropping, with their service alive
  io_.poll();
}

expected<std::shared_ptr<client>> client::open(std::string conninfo,
                                               const postgres_options& options,
                                               size_t max_links) {
  std::shared_ptr<client> c(new client(std::move(conninfo), options, max_links));
  auto first = c->acquire();
  if (!first) return std::move(first).error();
  return c;
}

expected<std::unique_ptr<link>> client::connect() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (backoff_.count() > 0 && std::chrono::steady_clock::now() < retry_at_) return last_error_;
  }
  auto l = link::connect(io_, conninfo_, options_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (l) {
    backoff_ = std::chrono::milliseconds(0);
  } else {
    last_error_ = l.error();
    backoff_ = std::min(std::chrono::milliseconds(2000),
                        std::max(std::chrono::milliseconds(50), backoff_ * 2));
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
  }
  return l;
}

expected<lease> client::acquire() {
  auto bound = options_.request_timeout;
  auto deadline = std::chrono::steady_clock::now() + bound;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    while (!idle_.empty()) {
      auto l = std::move(idle_.back());
      idle_.pop_back();
      if (!l->broken()) return lease(this, std::move(l));
      --links_;
    }
    if (links_ < max_links_) break;
    if (bound.count() <= 0) {
      returned_.wait(lock);
    } else if (returned_.wait_until(lock, deadline) == std::cv_status::timeout &&
               idle_.empty() && links_ >= max_links_) {
      return error{errc::timeout, "no PostgreSQL connection came free within " +
                                    std::to_string(bound.count()) + " ms (all " +
                                    std::to_string(max_links_) +
                                    " of the pool are in use; postgres_options::read_connections "
                                    "sizes it, request_timeout bounds the wait)"};
    }
  }
  ++links_;
  lock.unlock();
  auto l = connect();
  if (!l) {
    lock.lock();
    --links_;
    returned_.notify_one();
    return std::move(l).error();
  }
  return lease(this, std::move(*l));
}

expected<lease> client::dedicated() {
  auto l = connect();
  if (!l) return std::move(l).error();
  return lease(this, std::move(*l), false);
}

void client::give_back(std::unique_ptr<link> l) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (l->broken()) {
    // Dropped on the I/O thread, after any cancelled wait of it has run there.
    boost::asio::post(io_, [dead = std::shared_ptr<link>(std::move(l))] {});
    --links_;
  } else {
    idle_.push_back(std::move(l));
  }
  returned_.notify_one();
}

void client::forget() {
  std::lock_guard<std::mutex> lock(mutex_);
  --links_;
  returned_.notify_one();
}

} // namespace cairn::pg
