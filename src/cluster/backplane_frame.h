#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/shard.h"

namespace tickwire::cluster {

// A tick's seq is its message's stream sequence times this plus its position in the frame; a
// frame's ticks past kSeqPerMessage - 1 are not applied.
inline constexpr std::uint64_t kSeqPerMessage = 65536;

// One stream message (a tickwire.v1.BackplaneFrame) as an instance applies it: its ticks
// stamped with their seq and the frame's accept time, split by owner shard.
struct DecodedFrame {
  std::string origin;
  std::uint64_t nonce = 0;
  std::int64_t accepted_ns = 0;
  std::size_t ticks = 0;  // ticks taken from the frame (all of them, up to kSeqPerMessage - 1)
  std::vector<std::vector<engine::IngestTick>> by_shard;  // one list per shard
};

// Decodes the message at stream sequence `stream_seq` for an instance of `shards` shards
// (at least 1). Needs no NATS connection. Returns nullopt when the bytes are not a frame.
std::optional<DecodedFrame> DecodeBackplaneFrame(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t stream_seq, unsigned shards);

}  // namespace tickwire::cluster
