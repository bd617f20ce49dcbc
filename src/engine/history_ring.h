#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace tickwire::engine {

// A bounded ring of the most recent values, oldest evicted first. Storage grows with use (a
// topic that had three bars holds three), up to `capacity` values; it never exceeds it.
template <typename T>
class HistoryRing {
 public:
  explicit HistoryRing(std::size_t capacity = 0) : capacity_(capacity) {}

  void Push(const T& v) {
    if (capacity_ == 0) return;
    if (buf_.size() < capacity_) {
      if (buf_.size() == buf_.capacity()) {
        buf_.reserve(std::min(capacity_, std::max<std::size_t>(4, buf_.capacity() * 2)));
      }
      buf_.push_back(v);
      return;
    }
    buf_[head_] = v;  // full: overwrite the oldest
    dropped_ = true;
    head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
  }

  // Asks the CPU to fetch the slot the next Push writes: with thousands of topics their rings
  // are not in cache, and Shard::Apply prefetches a batch's slots before it writes any.
  void PrefetchNext() const {
    if (capacity_ == 0 || buf_.empty()) return;
    const T* slot = buf_.size() < capacity_ ? buf_.data() + buf_.size() : buf_.data() + head_;
    if (buf_.size() < buf_.capacity() || buf_.size() == capacity_) __builtin_prefetch(slot, 1);
  }

  std::size_t size() const { return buf_.size(); }
  bool empty() const { return buf_.empty(); }
  std::size_t capacity() const { return capacity_; }
  // Whether a value was ever overwritten (history older than the oldest held existed).
  bool dropped() const { return dropped_; }
  // Bytes of storage held (for the documented per-topic memory cost).
  std::size_t allocated_bytes() const { return buf_.capacity() * sizeof(T); }

  // i = 0 is the oldest value, size() - 1 the newest.
  const T& operator[](std::size_t i) const {
    const std::size_t j = head_ + i;
    return buf_[j >= buf_.size() ? j - buf_.size() : j];
  }
  const T& back() const { return (*this)[buf_.size() - 1]; }

  void Clear() {
    std::vector<T>().swap(buf_);
    head_ = 0;
    dropped_ = false;
  }

 private:
  std::size_t capacity_;
  std::size_t head_ = 0;  // index of the oldest value once full; 0 before
  bool dropped_ = false;
  std::vector<T> buf_;
};

}  // namespace tickwire::engine
