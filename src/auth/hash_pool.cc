#include "auth/hash_pool.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

namespace tickwire::auth {

HashPool::HashPool(unsigned threads, std::size_t max_queued)
    : max_queued_(std::max<std::size_t>(1, max_queued)), thread_count_(std::max(1u, threads)) {
  threads_.reserve(thread_count_);
  for (unsigned i = 0; i < thread_count_; ++i) {
    threads_.emplace_back([this] { Run(); });
    pthread_setname_np(threads_.back().native_handle(), "tw-auth-hash");
  }
}

HashPool::~HashPool() { Stop(); }

void HashPool::Stop() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  // `dropped` is destroyed here, outside the lock: the jobs' captures may be heavy.
}

bool HashPool::TrySubmit(Job job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

std::size_t HashPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::uint32_t HashPool::EstimatedWaitMs() const {
  const std::uint64_t mean_us = mean_job_us_.load(std::memory_order_relaxed);
  const std::uint64_t jobs = queued() + 1;
  const std::uint64_t ms = mean_us * jobs / thread_count_ / 1000;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(ms, 100, 60'000));
}

void HashPool::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto start = std::chrono::steady_clock::now();
    bool done = false;
    try {
      done = job();
    } catch (...) {
      faults_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    job = nullptr;  // its captures go now, not when the next job arrives
    if (!done) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const auto us =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count());
    // Mean of roughly the last 8 jobs; races between threads only blur it.
    const std::uint64_t old = mean_job_us_.load(std::memory_order_relaxed);
    mean_job_us_.store(old == 0 ? us : (old * 7 + us) / 8, std::memory_order_relaxed);
    completed_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace tickwire::auth
