#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/shard.h"

namespace tickwire::net {
class Worker;
}

// Durable embedded history (DATA_DIR, docs/RELIABILITY.md): the snapshot files of every shard,
// written on drain and every SNAPSHOT_INTERVAL, and restored at start.
//
// Files are named shard-<generation>-<index>.snap (format: engine/snapshot.h). A generation is
// one run of the server: it writes one file per worker, each replaced atomically (temp file,
// fsync, rename, fsync of the directory) at every round. A start restores the newest
// generation that has a file for every shard it names, then writes the next generation; once
// that has a complete round on disk, the older generations' files are removed. So a crash at
// any moment leaves a complete set to restore.
namespace tickwire::server {

// Counters and figures of the snapshots (any thread; read by /metrics).
struct SnapshotStats {
  std::atomic<std::uint64_t> rounds_written{0};
  std::atomic<std::uint64_t> rounds_failed{0};
  std::atomic<std::uint64_t> files_refused{0};  // at start: corrupt, truncated, other version
  std::atomic<std::uint64_t> topics_restored{0};
  std::atomic<std::uint64_t> topics_dropped{0};     // restored sets over this run's MAX_TOPICS
  std::atomic<std::int64_t> last_success_ns{0};     // wall clock of the last complete round
  std::atomic<std::uint64_t> last_round_us{0};      // how long the last round took
  std::atomic<std::uint64_t> last_bytes{0};         // size of the last round's files
  std::atomic<std::uint64_t> last_max_pause_us{0};  // longest slice a worker ran, last round
};

// What a start found in DATA_DIR.
struct RestoreResult {
  std::string error;  // set: DATA_DIR cannot be used (startup fails)
  // The stream epoch the restored history belongs to; nullopt when nothing was restored (a new
  // stream epoch starts) or the files carry none.
  std::optional<std::uint64_t> stream_epoch;
  // Every file of the restored set was written on drain (kSnapshotFinal): nothing acknowledged
  // was lost. False after a crash: the history is that of the last periodic round, and numbers
  // a client saw after it may be handed out again.
  bool clean = false;
  std::uint64_t generation = 1;  // what this run writes
  std::size_t topics = 0;
};

// Creates DATA_DIR if needed, checks it is a writable directory, removes leftover temp files,
// chooses the snapshot set and restores it into `shards` (indexed by worker; their threads must
// not run yet, or this must run on each one's thread). Files that fail any check are refused:
// one snapshot_refused log line each, counted in `stats`, renamed to <name>.refused so that
// nothing removes them, and the server starts empty.
RestoreResult RestoreSnapshots(const std::string& dir, const std::vector<engine::Shard*>& shards,
                               SnapshotStats& stats);

// Writes the snapshot rounds of a running server. The file work runs on its own thread (or the
// caller's, for the final round); each shard is read on its worker's thread in slices of at most
// kSliceBytes (plus one topic), posted one at a time, so a worker's loop is never held by a
// snapshot for longer than one slice takes, and other work runs between slices.
class Snapshotter {
 public:
  static constexpr std::size_t kSliceBytes = 256 * 1024;

  Snapshotter(std::string dir, std::chrono::milliseconds interval,
              std::vector<net::Worker*> workers, std::uint64_t generation,
              std::uint64_t stream_epoch, SnapshotStats& stats);
  ~Snapshotter();
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  // Starts the periodic rounds (one every `interval`, from the start of the previous one).
  void Start();
  // Stops them; waits for a round in progress.
  void Stop();
  // Writes one round now on the calling thread: true when every shard's file was written.
  // `final`: the round on drain, after the last tick was applied (marked in the files).
  bool WriteRound(const char* reason, bool final);

 private:
  void Run();
  // Writes shard `index`'s file; adds its size and longest slice. Returns an error or empty.
  std::string WriteShard(unsigned index, bool final, std::uint64_t& bytes, std::uint64_t& topics,
                         std::chrono::microseconds& max_pause);
  // Removes the files of other generations (after a complete round of this one).
  void RemoveOlderGenerations();

  std::string dir_;
  std::chrono::milliseconds interval_;
  std::vector<net::Worker*> workers_;
  std::uint64_t generation_;
  std::uint64_t stream_epoch_;
  SnapshotStats& stats_;
  // Per shard, what its file of this generation holds: the shard's ChangeCount when the file's
  // first slice was read, its topics and size. A periodic round skips a shard whose count has
  // not moved since (an idle server does not rewrite its files); the round on drain never skips
  // (it marks every file final). Snapshot thread (or the final round's caller) only.
  struct Written {
    bool valid = false;
    std::uint64_t change_count = 0;
    std::uint64_t topics = 0;
    std::uint64_t bytes = 0;
  };
  std::vector<Written> written_;
  std::mutex round_mu_;  // one round at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tickwire::server
