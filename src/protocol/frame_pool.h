#pragma once

#include <cstddef>
#include <string>

namespace tickwire::protocol {

// Recycled frame buffers, one free list per thread (a worker builds and writes its
// connections' frames on its own thread). A DATA_BATCH frame is built in a buffer that earlier
// frames already grew and touched, so a busy connection costs no allocation and no page fault
// per frame. At most kFramePoolSize buffers of at most kFramePoolMaxCapacity bytes are kept
// per thread.
inline constexpr std::size_t kFramePoolSize = 64;
inline constexpr std::size_t kFramePoolMaxCapacity = 256 * 1024;

// An empty string, with the capacity of a recycled buffer when one is free.
std::string TakeFrameBuffer();
// Gives a buffer back (its contents are discarded); small and huge ones are just freed.
void RecycleFrameBuffer(std::string&& buffer);

}  // namespace tickwire::protocol
