// listener_link: LISTEN on Cairn's channel so followers wake on other writers' commits.
#include <future>

#include <boost/asio/post.hpp>

#include "postgres_internal.hpp"

namespace cairn::pg {

void listener_link::start(std::shared_ptr<client> c, std::string channel,
                          std::function<void(std::vector<std::string>)> on_wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  client_ = std::move(c);
  channel_ = std::move(channel);
  on_wake_ = std::move(on_wake);
}

bool listener_link::ensure() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!client_) return false;
  if (link_ && listening_ && !link_->broken()) return true;
  if (link_) {
    // The old connection is lost and its wait has ended: drop it on the I/O thread.
    std::promise<void> gone;
    boost::asio::post(client_->io(), [l = std::move(link_), &gone]() mutable {
      l.reset();
      gone.set_value();
    });
    gone.get_future().get();
  }
  listening_ = false;
  auto l = client_->connect();
  if (!l) return false;
  std::shared_ptr<link> fresh(std::move(*l));
  std::promise<pipeline_outcome> listened;
  auto wake = on_wake_;
  boost::asio::post(client_->io(), [&listened, fresh, wake, channel = channel_] {
    std::vector<query> qs;
    qs.push_back(query{"LISTEN " + quote_ident(channel), {}});
    fresh->async_run(std::move(qs), [&listened, fresh, wake](pipeline_outcome out) {
      if (out.ok()) {
        fresh->async_listen([wake](std::vector<std::string> payloads) { wake(std::move(payloads)); },
                            [wake] { wake({}); });
      }
      listened.set_value(std::move(out));
    });
  });
  auto out = listened.get_future().get();
  link_ = std::move(fresh);
  listening_ = out.ok();
  return listening_;
}

void listener_link::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!link_ || !client_) return;
  std::promise<void> gone;
  boost::asio::post(client_->io(), [l = std::move(link_), &gone]() mutable {
    l.reset(); // cancels the wait
    gone.set_value();
  });
  gone.get_future().get();
}

} // namespace cairn::pg
