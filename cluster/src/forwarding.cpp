// forwarding: endpoint and per-peer forwarders (forwarding.hpp).
#include "forwarding.hpp"

#include <atomic>
#include <unordered_map>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "reply_sink.hpp"

namespace cairn {

namespace {

using forward_atom = caf::atom_constant<caf::atom("fwd")>;
using forwarded_atom = caf::atom_constant<caf::atom("fwdreply")>;
using whoareyou_atom = caf::atom_constant<caf::atom("whoareyou")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;

/// One command's outcome on the wire: code 0 and `reply`, or an errc and its message.
struct forward_outcome {
  int32_t code = 0;
  std::string message;
  command_reply reply;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forward_outcome& x) {
  return f(caf::meta::type_name("cairn.forward_outcome"), x.code, x.message, x.reply);
}

/// A forwarded command's reply: answered exactly once, with unavailable if dropped
/// unanswered (reply_sink.hpp).
using reply_ptr = std::shared_ptr<reply_sink>;

/// A command handed to a forwarder (local only: it carries a closure).
struct forward_job {
  command_message cmd;
  reply_ptr reply;
};

} // namespace
} // namespace cairn

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::forward_job)

namespace cairn {
namespace {

struct forwarder_state {
  static inline const char* name = "cairn.forwarder";
  caf::actor remote;
  std::string member;
  size_t batch = 256;
  caf::timespan delay{};
  std::vector<command_message> commands; // the batch being filled
  std::vector<reply_ptr> replies;
  bool flush_scheduled = false;
  uint64_t next_batch = 0;
  std::unordered_map<uint64_t, std::vector<reply_ptr>> in_flight; // by batch id
  std::shared_ptr<std::atomic<bool>> alive;
};

using forwarder_t = caf::stateful_actor<forwarder_state>;

void flush(forwarder_t* self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.commands.empty()) return;
  auto id = ++st.next_batch;
  st.in_flight.emplace(id, std::move(st.replies));
  st.replies.clear();
  self->send(st.remote, forward_atom::value, id, std::move(st.commands));
  st.commands.clear();
}

caf::behavior forwarder(forwarder_t* self, caf::actor remote, std::string member, size_t batch,
                        caf::timespan delay, std::shared_ptr<std::atomic<bool>> alive) {
  auto& st = self->state;
  st.remote = std::move(remote);
  st.member = std::move(member);
  st.batch = std::max<size_t>(1, batch);
  st.delay = delay;
  st.alive = std::move(alive);
  self->monitor(st.remote);
  self->set_down_handler([self](const caf::down_msg&) {
    auto& st = self->state;
    log().warn("cluster: lost the connection to member {}; failing its {} unanswered batches",
               st.member, st.in_flight.size());
    st.alive->store(false);
    error gone{errc::unavailable, "member " + st.member + " went down before answering"};
    for (auto& batch : st.in_flight)
      for (auto& reply : batch.second) (*reply)(gone);
    for (auto& reply : st.replies) (*reply)(gone);
    st.in_flight.clear();
    st.replies.clear();
    st.commands.clear();
    self->quit();
  });
  return {
    [self](forward_job& job) {
      auto& st = self->state;
      st.commands.push_back(std::move(job.cmd));
      st.replies.push_back(std::move(job.reply));
      if (st.commands.size() >= st.batch) return flush(self);
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->delayed_send(self, st.delay, flush_atom::value);
      }
    },
    [self](flush_atom) { flush(self); },
    [self](forwarded_atom, uint64_t id, std::vector<forward_outcome>& outcomes) {
      auto& st = self->state;
      auto it = st.in_flight.find(id);
      if (it == st.in_flight.end()) return;
      auto replies = std::move(it->second);
      st.in_flight.erase(it);
      for (size_t i = 0; i < replies.size(); ++i) {
        if (i >= outcomes.size()) break; // the rest answer unavailable when dropped
        auto& o = outcomes[i];
        if (o.code == 0) (*replies[i])(o.reply);
        else (*replies[i])(error{static_cast<errc>(o.code), std::move(o.message)});
      }
    },
  };
}

class caf_peer_link final : public peer_link {
public:
  caf_peer_link(caf::actor forwarder, std::shared_ptr<std::atomic<bool>> alive)
      : forwarder_(std::move(forwarder)), alive_(std::move(alive)) {}
  ~caf_peer_link() override { caf::anon_send_exit(forwarder_, caf::exit_reason::user_shutdown); }

  void forward(command_message cmd, cluster_hooks::reply_handler reply) override {
    caf::anon_send(forwarder_,
                   forward_job{std::move(cmd), std::make_shared<reply_sink>(std::move(reply))});
  }
  bool alive() const override { return alive_->load(); }

private:
  caf::actor forwarder_;
  std::shared_ptr<std::atomic<bool>> alive_;
};

/// One forwarded batch's outcomes, sent back once the last command has answered.
struct batch_outcomes {
  caf::actor reply_to;
  uint64_t id = 0;
  std::vector<forward_outcome> outcomes;
  std::atomic<size_t> left{0};
};

caf::behavior endpoint(caf::event_based_actor* self, std::shared_ptr<cluster_router> router,
                       hello_handler on_hello) {
  return {
    [on_hello](hello_atom, const std::string& name, const caf::actor& peer) {
      if (peer) on_hello(name, peer);
    },
    [self, router](forward_atom, uint64_t id, std::vector<command_message>& commands) {
      auto batch = std::make_shared<batch_outcomes>();
      batch->reply_to = caf::actor_cast<caf::actor>(self->current_sender());
      batch->id = id;
      batch->outcomes.resize(commands.size());
      batch->left = commands.size();
      for (size_t i = 0; i < commands.size(); ++i)
        router->take_forwarded(std::move(commands[i]), [batch, i](expected<command_reply> r) {
          auto& o = batch->outcomes[i];
          if (r) {
            o.reply = *r;
          } else {
            o.code = static_cast<int32_t>(r.error().code());
            o.message = r.error().message();
          }
          if (batch->left.fetch_sub(1, std::memory_order_acq_rel) == 1)
            caf::anon_send(batch->reply_to, forwarded_atom::value, batch->id,
                           std::move(batch->outcomes));
        });
    },
    [router](whoareyou_atom) { return router->self_name(); },
  };
}

} // namespace

void add_cluster_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<std::vector<command_message>>("std::vector<cairn.command_message>");
  cfg.add_message_type<forward_outcome>("cairn.forward_outcome");
  cfg.add_message_type<std::vector<forward_outcome>>("std::vector<cairn.forward_outcome>");
}

caf::actor spawn_endpoint(caf::actor_system& sys, std::shared_ptr<cluster_router> router,
                          hello_handler on_hello) {
  return sys.spawn(endpoint, std::move(router), std::move(on_hello));
}

void say_hello(const caf::actor& remote, const std::string& name, const caf::actor& endpoint) {
  caf::anon_send(remote, hello_atom::value, name, endpoint);
}

std::shared_ptr<peer_link> make_peer_link(caf::actor_system& sys, caf::actor remote,
                                          std::string member, size_t batch,
                                          std::chrono::nanoseconds delay) {
  auto alive = std::make_shared<std::atomic<bool>>(true);
  auto fwd = sys.spawn(forwarder, std::move(remote), member, batch, caf::timespan{delay}, alive);
  return std::make_shared<caf_peer_link>(std::move(fwd), std::move(alive));
}

expected<std::string> ask_member_name(caf::actor_system& sys, const caf::actor& remote,
                                      std::chrono::nanoseconds timeout) {
  caf::scoped_actor self{sys};
  expected<std::string> out{error{errc::timeout, "no answer"}};
  self->request(remote, caf::timespan{timeout}, whoareyou_atom::value)
    .receive([&](const std::string& name) { out = name; },
             [&](const caf::error& e) { out = from_caf(e); });
  return out;
}

} // namespace cairn
