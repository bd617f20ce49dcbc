#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tickwire::auth {

// The threads that run password checks (PBKDF2, tens of milliseconds each) so that no event loop
// ever does: AUTH_HASH_THREADS threads, one FIFO queue of at most AUTH_HASH_QUEUE waiting jobs.
// A job that does not fit is refused at once (the caller answers AUTH_RATE_LIMITED with
// EstimatedWaitMs()), so a flood of AUTHs costs at most the queue's memory and the threads' CPU
// time, and the event loops keep serving everyone else. Thread-safe.
class HashPool {
 public:
  HashPool(unsigned threads, std::size_t max_queued);
  ~HashPool();
  HashPool(const HashPool&) = delete;
  HashPool& operator=(const HashPool&) = delete;

  // A job returns whether it did its work (false: skipped, nobody wants the answer any more).
  using Job = std::function<bool()>;
  // Queues `job`; false (and `job` dropped) when `max_queued` jobs are already waiting or the
  // pool has stopped. A job must not throw; one that does is counted and ignored.
  bool TrySubmit(Job job);
  // Stops the threads: jobs still queued are dropped unrun, running ones finish first. Call it
  // (from the owning thread) before destroying anything the jobs post to. Idempotent.
  void Stop();

  // Milliseconds a job queued now would wait for a thread (from the queue length and the mean
  // run time of recent jobs), at least 100.
  std::uint32_t EstimatedWaitMs() const;
  std::size_t queued() const;
  unsigned threads() const { return thread_count_; }
  std::size_t max_queued() const { return max_queued_; }
  std::uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
  std::uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  std::uint64_t faults() const { return faults_.load(std::memory_order_relaxed); }

 private:
  void Run();

  const std::size_t max_queued_;
  const unsigned thread_count_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> skipped_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> faults_{0};
  std::atomic<std::uint64_t> mean_job_us_{0};  // moving average of recent run times
};

}  // namespace tickwire::auth
