#include "node_scheduler.hpp"

#include <condition_variable>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/logger.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace cairn {

namespace {

/// CAF's clock, minus a hand-over per stopping actor. CAF asks the clock to cancel an
/// actor's timeouts whenever an actor stops, and CAF's thread-safe clock hands every
/// such request to its own thread through a 64-slot ring buffer: stopping a million
/// aggregates (which never set a timeout) then meant a million wake-ups of the clock
/// thread, and minutes. This clock remembers which actors have set a timeout and
/// passes on only their cancellations.
class node_clock final : public caf::detail::thread_safe_actor_clock {
public:
  using super = caf::detail::thread_safe_actor_clock;

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            uint64_t id) override {
    remember(self);
    super::set_ordinary_timeout(t, self, type, id);
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self, caf::message_id id) override {
    remember(self);
    super::set_request_timeout(t, self, id);
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         uint64_t id) override {
    remember(self);
    super::set_multi_timeout(t, self, type, id);
  }

  /// Called by every stopping actor (its own last act, so no timeout of it can be
  /// set concurrently).
  void cancel_timeouts(caf::abstract_actor* self) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (with_timeouts_.erase(self) == 0) return;
    }
    super::cancel_timeouts(self);
  }

private:
  void remember(caf::abstract_actor* self) {
    std::lock_guard<std::mutex> guard{mutex_};
    with_timeouts_.insert(self);
  }

  std::mutex mutex_;
  std::unordered_set<caf::abstract_actor*> with_timeouts_; // set one, not yet stopped
};

/// One shared FIFO of runnable actors and N worker threads that take from it.
class work_sharing_scheduler final : public caf::scheduler::abstract_coordinator {
public:
  explicit work_sharing_scheduler(caf::actor_system& sys) : abstract_coordinator(sys) {}

  /// From any thread: an actor became runnable.
  void enqueue(caf::resumable* job) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      queue_.push_back(job);
    }
    ready_.notify_one();
  }

  caf::detail::thread_safe_actor_clock& clock() noexcept override { return clock_; }

protected:
  void start() override {
    for (size_t i = 0; i < num_workers(); ++i)
      workers_.push_back(std::make_unique<worker>(*this));
    for (auto& w : workers_) w->thread = std::thread{[this, unit = w.get()] { run(*unit); }};
    timer_ = std::thread{[this] {
      caf::detail::set_thread_name("caf.clock");
      caf::logger::set_current_actor_system(&system());
      system().thread_started();
      clock_.run_dispatch_loop();
      system().thread_terminates();
    }};
    abstract_coordinator::start(); // the utility actors
  }

  void stop() override {
    // Each worker leaves at its stop mark (a null job), queued behind everything
    // already runnable; jobs that become runnable after the marks are not run but
    // released below. (CAF retires its workers one at a time, so a late job may
    // still run; by now the node's actors have all stopped, so none is expected.)
    // Then the utility actors stop, and what is left is released while the clock
    // still runs (an actor's cleanup posts to it).
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (size_t i = 0; i < workers_.size(); ++i) queue_.push_back(nullptr);
    }
    ready_.notify_all();
    for (auto& w : workers_) w->thread.join();
    stop_actors();
    for (;;) { // a cleanup may make another job runnable
      std::deque<caf::resumable*> left;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        left.swap(queue_);
      }
      if (left.empty()) break;
      for (auto* job : left)
        if (job) cleanup_and_release(job);
    }
    clock_.cancel_dispatch_loop();
    timer_.join();
  }

private:
  class worker final : public caf::execution_unit {
  public:
    explicit worker(work_sharing_scheduler& parent)
      : caf::execution_unit(&parent.system()), parent_(parent) {}
    void exec_later(caf::resumable* job) override { parent_.enqueue(job); }
    std::thread thread;

  private:
    work_sharing_scheduler& parent_;
  };

  /// A worker's loop: CAF's, without the logger's per-job actor id (a dynamic_cast
  /// of every job).
  void run(worker& self) {
    caf::detail::set_thread_name("caf.worker");
    // Registered with CAF's logger, as CAF's own workers are: without it, the first
    // command after a recovery took 5 ms longer (bench/RESULTS.md).
    caf::logger::set_current_actor_system(&system());
    system().thread_started();
    for (;;) {
      caf::resumable* job;
      {
        std::unique_lock<std::mutex> lock{mutex_};
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      if (job == nullptr) break; // stop mark
      switch (job->resume(&self, max_throughput_)) {
        case caf::resumable::resume_later:
          enqueue(job); // still runnable: to the back of the queue, keeping its reference
          break;
        case caf::resumable::done:
        case caf::resumable::awaiting_message:
          intrusive_ptr_release(job); // enqueued again, with a new reference, on its next message
          break;
        case caf::resumable::shutdown_execution_unit:
          system().thread_terminates(); // as CAF's workers: the job asks this one to stop
          return;
      }
    }
    system().thread_terminates();
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<caf::resumable*> queue_; // null: a worker's stop mark
  std::vector<std::unique_ptr<worker>> workers_;
  node_clock clock_;
  std::thread timer_;
};

} // namespace

caf::actor_system::module* make_node_scheduler(caf::actor_system& sys) {
  using namespace caf::scheduler;
  auto policy = caf::get_or(sys.config(), "scheduler.policy", caf::atom("cairn"));
  if (policy == caf::atom("sharing")) return new coordinator<caf::policy::work_sharing>(sys);
  if (policy == caf::atom("stealing")) return new coordinator<caf::policy::work_stealing>(sys);
  if (policy == caf::atom("testing")) return new test_coordinator(sys);
  if (policy != caf::atom("cairn"))
    std::cerr << "[WARNING] scheduler.policy '" << caf::to_string(policy)
              << "' is unknown; using 'cairn' (or choose 'sharing' or 'stealing')\n";
  return new work_sharing_scheduler(sys);
}

} // namespace cairn
