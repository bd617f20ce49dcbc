#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cluster/topic_directory.h"
#include "engine/shard.h"

namespace tickwire::cluster {

// A tick's seq is its message's stream sequence times this plus its position in the frame; a
// frame's ticks past kSeqPerMessage - 1 are not applied.
inline constexpr std::uint64_t kSeqPerMessage = 65536;

// One stream message (a tickwire.v1.BackplaneFrame) as an instance applies it: its ticks
// stamped with their seq and the frame's accept time, in frame order.
struct DecodedFrame {
  std::string origin;
  std::uint64_t nonce = 0;
  std::int64_t accepted_ns = 0;
  std::string user;                       // who published it (empty in frames of older versions)
  std::vector<engine::IngestTick> ticks;  // at most kSeqPerMessage - 1, the rest are not taken
};

// The latest accept time a frame may carry (about year 2116): bucket ends and close delays
// computed from it stay far from int64 overflow.
inline constexpr std::int64_t kMaxFrameAcceptNs = std::int64_t{1} << 62;
// How far a tick's ts_ns may lead its frame's accept time: the bound a session applies to
// PUBLISH (session::kMaxFutureSkewNs; a test keeps the two equal).
inline constexpr std::int64_t kMaxFrameFutureSkewNs = 5'000'000'000;

// Decodes the message at stream sequence `stream_seq`. Needs no NATS connection. Returns
// nullopt when the bytes are not a frame, or when its times are outside what a publishing
// instance admits: accept time in [0, kMaxFrameAcceptNs], every tick's ts_ns in
// [0, accept time + kMaxFrameFutureSkewNs]. Every instance refuses the same messages.
std::optional<DecodedFrame> DecodeBackplaneFrame(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t stream_seq);

// A decoded frame after the log's topic cap, split by owner shard.
struct AdmittedFrame {
  std::vector<std::vector<engine::IngestTick>> by_shard;  // the applied ticks, frame order
  std::vector<std::vector<std::string>> forget;           // evicted topics, by owner shard
  std::size_t applied = 0;
  std::array<std::uint32_t, engine::kRefusalKinds> refused{};  // by engine::Refusal
  std::uint32_t refused_total = 0;
  // The first refused tick (when refused_total > 0).
  std::uint32_t first_refused_index = 0;
  std::string first_refused_topic;
  engine::Refusal first_refused_reason = engine::Refusal::kNone;
};

// Puts every tick of `frame` (stream sequence `stream_seq`, applied while the log clock stood at
// `clock_ns`) through `directory` in frame order, for an instance of `shards` shards (at least
// 1). Takes the frame's ticks.
AdmittedFrame AdmitFrame(DecodedFrame& frame, std::uint64_t stream_seq, std::int64_t clock_ns,
                         TopicDirectory& directory, unsigned shards);

}  // namespace tickwire::cluster
