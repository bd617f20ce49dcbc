#pragma once

// Conversions between the client's plain structs and the wire messages. Internal to the client
// library (and its tests); no sockets here.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "client/error.h"
#include "client/records.h"

namespace tickwire::client::codec {

// Whole frames (header + payload), ready to write.
std::string EncodeAuth(const std::string& username, const std::string& password,
                       const std::string& client_name);
std::string EncodeSubscribe(std::uint32_t request_id, Mode mode,
                            const std::vector<std::string>& topics, std::uint32_t backfill,
                            std::int64_t since_ms, std::span<const ResumePoint> resume_after = {},
                            std::uint64_t resume_stream_epoch = 0, std::int64_t resume_from_ns = 0);
std::string EncodeUnsubscribe(std::uint32_t request_id, std::uint64_t subscription_id);
std::string EncodePublish(std::uint32_t request_id, std::span<const Tick> ticks, bool ack);
std::string EncodeHeartbeat(std::int64_t ts_ms);

// Reads DataBatch.batch_seq without decoding the records: a fast path for the field-1-first
// layout every tickwire server writes, a full scan otherwise. nullopt when malformed.
std::optional<std::uint64_t> PeekBatchSeq(std::span<const std::uint8_t> payload);

// Decodes a DataBatch payload into `out` (records appended). False when malformed.
bool DecodeBatch(std::span<const std::uint8_t> payload, Batch& out);

// Decodes an ERROR payload into a kServer Error. nullopt when malformed.
std::optional<Error> DecodeError(std::span<const std::uint8_t> payload);

}  // namespace tickwire::client::codec
