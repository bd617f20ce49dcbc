// Differential fuzzer: the hand-written DATA_BATCH scanner (ScanDataBatch, ParseTickFields)
// against protobuf's own parser. Input: a DataBatch payload.
//
// Oracles, whenever both sides accept the input:
//  - ScanDataBatch and DataBatch::ParseFromArray see the same batch_seq and record count, and the
//    same kind (tick, bar, watermark, history_end, none) for every record;
//  - ParseTickFields and Tick::ParseFromArray read the same fields from the same tick bytes,
//    ParseBarFields and Bar::ParseFromArray the same from bar bytes, ParseWatermarkFields and
//    Watermark::ParseFromArray the same from watermark bytes, and ParseHistoryEndFields and
//    HistoryEnd::ParseFromArray the same from history_end bytes.
// Either side may reject what the other accepts (protobuf checks UTF-8 and nested messages; the
// scanner refuses groups and mistyped known fields); that is not a failure.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace {

using tickwire::protocol::ParseTickFields;
using tickwire::protocol::RecordKind;
using tickwire::protocol::ScanDataBatch;
namespace v1 = tickwire::v1;

void Check(bool ok) {
  if (!ok) std::abort();
}

std::uint64_t Bits(double d) { return std::bit_cast<std::uint64_t>(d); }

void CompareTick(std::span<const std::uint8_t> bytes) {
  const auto ours = ParseTickFields(bytes);
  v1::Tick theirs;
  const bool theirs_ok = theirs.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!ours || !theirs_ok) return;
  Check(ours->topic == theirs.topic());
  Check(Bits(ours->price) == Bits(theirs.price()));
  Check(Bits(ours->size) == Bits(theirs.size()));
  Check(ours->ts_ns == theirs.ts_ns());
  Check(ours->seq == theirs.seq());
  Check(ours->prev_seq == theirs.prev_seq());
  Check(ours->topic_epoch == theirs.topic_epoch());
}

void CompareBar(std::span<const std::uint8_t> bytes) {
  const auto ours = tickwire::protocol::ParseBarFields(bytes);
  v1::Bar theirs;
  const bool theirs_ok = theirs.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!ours || !theirs_ok) return;
  Check(ours->topic == theirs.topic());
  Check(ours->interval == static_cast<std::uint32_t>(theirs.interval()));
  Check(ours->start_ms == theirs.start_ms());
  Check(Bits(ours->open) == Bits(theirs.open()) && Bits(ours->high) == Bits(theirs.high()));
  Check(Bits(ours->low) == Bits(theirs.low()) && Bits(ours->close) == Bits(theirs.close()));
  Check(Bits(ours->volume) == Bits(theirs.volume()) && Bits(ours->vwap) == Bits(theirs.vwap()));
  Check(ours->count == theirs.count());
}

void CompareWatermark(std::span<const std::uint8_t> bytes) {
  const auto ours = tickwire::protocol::ParseWatermarkFields(bytes);
  v1::Watermark theirs;
  const bool theirs_ok = theirs.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!ours || !theirs_ok) return;
  Check(ours->interval == static_cast<std::uint32_t>(theirs.interval()));
  Check(ours->start_ms == theirs.start_ms());
}

void CompareHistoryEnd(std::span<const std::uint8_t> bytes) {
  std::vector<tickwire::protocol::LostRangeFields> lost;
  const auto ours = tickwire::protocol::ParseHistoryEndFields(bytes, lost);
  v1::HistoryEnd theirs;
  const bool theirs_ok = theirs.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!ours || !theirs_ok) return;
  Check(ours->subscription_id == theirs.subscription_id());
  Check(ours->truncated == theirs.truncated() && ours->retention == theirs.retention());
  Check(ours->backfill_limit == theirs.backfill_limit());
  Check(ours->epoch_changed == theirs.epoch_changed());
  Check(ours->lost_omitted == theirs.lost_omitted());
  Check(ours->lost.size() == static_cast<std::size_t>(theirs.lost_size()));
  for (std::size_t i = 0; i < ours->lost.size(); ++i) {
    const auto& t = theirs.lost(static_cast<int>(i));
    Check(ours->lost[i].topic == t.topic() && ours->lost[i].from_seq == t.from_seq());
    Check(ours->lost[i].to_seq == t.to_seq() && ours->lost[i].topic_epoch == t.topic_epoch());
  }
}

void DiscardProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

}  // namespace

// Protobuf logs every string field with invalid UTF-8; the fuzzer produces those constantly.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(&DiscardProtobufLog);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> payload(data, size);

  // The input as a single Tick, so ParseTickFields is fuzzed directly too.
  CompareTick(payload);
  CompareBar(payload);
  CompareWatermark(payload);
  CompareHistoryEnd(payload);

  std::vector<RecordKind> kinds;
  const auto batch_seq = ScanDataBatch(payload, [&](RecordKind kind, auto inner) {
    kinds.push_back(kind);
    // Bytes of a record must lie inside the payload.
    Check(inner.empty() || (inner.data() >= data && inner.data() + inner.size() <= data + size));
    if (kind == RecordKind::kTick) CompareTick(inner);
    if (kind == RecordKind::kBar) CompareBar(inner);
    if (kind == RecordKind::kWatermark) CompareWatermark(inner);
    if (kind == RecordKind::kHistoryEnd) CompareHistoryEnd(inner);
  });

  v1::DataBatch batch;
  const bool proto_ok = batch.ParseFromArray(data, static_cast<int>(size));
  if (!batch_seq || !proto_ok) return 0;

  Check(*batch_seq == batch.batch_seq());
  Check(kinds.size() == static_cast<std::size_t>(batch.records_size()));
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const v1::Record& r = batch.records(static_cast<int>(i));
    switch (r.kind_case()) {
      case v1::Record::kTick:
        Check(kinds[i] == RecordKind::kTick);
        break;
      case v1::Record::kBar:
        Check(kinds[i] == RecordKind::kBar);
        break;
      case v1::Record::kWatermark:
        Check(kinds[i] == RecordKind::kWatermark);
        break;
      case v1::Record::kHistoryEnd:
        Check(kinds[i] == RecordKind::kHistoryEnd);
        break;
      case v1::Record::KIND_NOT_SET:
        Check(kinds[i] == RecordKind::kUnknown);
        break;
    }
  }
  return 0;
}
