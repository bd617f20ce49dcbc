#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tickwire::protocol {

// Assembles DATA_BATCH frames from pre-encoded `DataBatch.records` entries (see
// AppendTickRecordEntry). Entries are copied once into the frame being built; nothing is
// re-encoded per subscriber. A frame's payload never exceeds max_msg_size.
// The start of a DATA_BATCH frame whose `records_bytes` of encoded records entries follow
// separately (written from shared memory with a gather write): the 5-byte header and the
// batch_seq field.
std::string EncodeDataBatchHead(std::uint64_t batch_seq, std::size_t records_bytes);
// Worst-case size of the batch_seq field (tag + 10-byte varint): a frame's records may take
// max_msg_size minus this.
inline constexpr std::size_t kMaxBatchSeqField = 11;

class BatchBuilder {
 public:
  explicit BatchBuilder(std::uint32_t max_msg_size) : max_msg_size_(max_msg_size) {}

  bool empty() const { return records_ == 0; }
  std::size_t records() const { return records_; }
  // Payload bytes of the frame so far (0 when empty).
  std::size_t payload_size() const;
  // Whether `entry_size` more bytes fit without the payload exceeding max_msg_size.
  bool Fits(std::size_t entry_size) const;
  // Bytes of entries that still fit into the frame (into a new one when none is open).
  std::size_t Room() const;
  // Appends one encoded entry, opening a frame numbered `batch_seq` if none is open. The caller
  // checks Fits() first and finishes the frame when it does not fit.
  void Append(std::string_view entry, std::uint64_t batch_seq) { AppendRun(entry, 1, batch_seq); }
  // Appends `records` consecutive encoded entries at once (`entries` is their bytes, end to
  // end): one copy for the lot. The caller checks Room() first.
  void AppendRun(std::string_view entries, std::size_t records, std::uint64_t batch_seq);
  // Returns the complete frame (header + payload) and resets the builder.
  std::string Finish();
  void set_max_msg_size(std::uint32_t v) { max_msg_size_ = v; }

 private:
  std::uint32_t max_msg_size_;
  std::size_t records_ = 0;
  std::string frame_;  // header placeholder + batch_seq field + entries
};

}  // namespace tickwire::protocol
