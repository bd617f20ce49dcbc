#include "protocol/frame_pool.h"

#include <vector>

namespace tickwire::protocol {
namespace {

// Below this a buffer is cheaper to allocate than to keep.
constexpr std::size_t kMinPooledCapacity = 4096;

std::vector<std::string>& Pool() {
  thread_local std::vector<std::string> pool = [] {
    std::vector<std::string> v;
    v.reserve(kFramePoolSize);
    return v;
  }();
  return pool;
}

}  // namespace

std::string TakeFrameBuffer() {
  auto& pool = Pool();
  if (pool.empty()) return {};
  std::string out = std::move(pool.back());
  pool.pop_back();
  out.clear();
  return out;
}

void RecycleFrameBuffer(std::string&& buffer) {
  const std::size_t cap = buffer.capacity();
  if (cap < kMinPooledCapacity || cap > kFramePoolMaxCapacity) return;
  auto& pool = Pool();
  if (pool.size() >= kFramePoolSize) return;
  pool.push_back(std::move(buffer));
}

}  // namespace tickwire::protocol
