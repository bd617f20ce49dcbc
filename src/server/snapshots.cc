#include "server/snapshots.h"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "common/wall_clock.h"
#include "engine/snapshot.h"
#include "net/worker.h"
#include "observability/log.h"

namespace tickwire::server {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kPrefix = "shard-";
constexpr std::string_view kSuffix = ".snap";
constexpr std::string_view kTempSuffix = ".tmp";
// How long the snapshot thread waits for a worker to serve one slice before it gives the round
// up (a worker that busy has bigger problems; the next round tries again).
constexpr auto kSliceWait = std::chrono::seconds(30);

std::string FileName(std::uint64_t generation, unsigned index) {
  return std::string(kPrefix) + std::to_string(generation) + "-" + std::to_string(index) +
         std::string(kSuffix);
}

// shard-<generation>-<index>.snap -> generation, index.
bool ParseFileName(std::string_view name, std::uint64_t& generation, unsigned& index) {
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  name.remove_prefix(kPrefix.size());
  name.remove_suffix(kSuffix.size());
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return false;
  const char* end = name.data() + dash;
  auto [p, ec] = std::from_chars(name.data(), end, generation);
  if (ec != std::errc() || p != end) return false;
  auto [q, ec2] = std::from_chars(name.data() + dash + 1, name.data() + name.size(), index);
  return ec2 == std::errc() && q == name.data() + name.size();
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// A whole file mapped read-only (the page cache holds it; nothing is copied).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error_ = Errno("open");
      return;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      error_ = Errno("stat");
    } else if (st.st_size > 0) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        error_ = Errno("mmap");
        size_ = 0;
      } else {
        data_ = static_cast<const char*>(p);
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view bytes() const { return {data_ != nullptr ? data_ : "", size_}; }
  const std::string& error() const { return error_; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::string error_;
};

// One refused file: logged, counted, and set aside under <name>.refused for the operator.
void Refuse(const fs::path& path, const std::string& reason, SnapshotStats& stats) {
  stats.files_refused.fetch_add(1);
  std::error_code ec;
  fs::rename(path, fs::path(path.string() + ".refused"), ec);
  obs::Log(obs::Level::kError, "snapshot_refused",
           "snapshot file refused; the server starts without the history it held",
           {{"file", path.string()}, {"reason", reason}, {"kept_as", path.string() + ".refused"}});
}

bool FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

RestoreResult RestoreSnapshots(const std::string& dir, const std::vector<engine::Shard*>& shards,
                               SnapshotStats& stats) {
  RestoreResult result;
  const auto start = SteadyClock::now();
  std::size_t refused_files = 0;
  auto refuse = [&](const fs::path& path, const std::string& reason) {
    ++refused_files;
    Refuse(path, reason, stats);
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) {
    result.error = "DATA_DIR: '" + dir + "' is not a directory";
    return result;
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    result.error = "DATA_DIR: '" + dir + "' is not writable (" + std::strerror(errno) + ")";
    return result;
  }
  // generation -> index -> path, for files whose header reads.
  std::map<std::uint64_t, std::map<unsigned, fs::path>> generations;
  std::map<std::uint64_t, std::uint32_t> counts;  // generation -> shard_count in its headers
  std::uint64_t newest = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(kTempSuffix) && name.starts_with(kPrefix)) {
      fs::remove(entry.path(), ec);  // a round that never finished
      continue;
    }
    std::uint64_t generation = 0;
    unsigned index = 0;
    if (!ParseFileName(name, generation, index)) continue;
    newest = std::max(newest, generation);
    MappedFile file(entry.path().string());
    if (!file.error().empty()) {
      refuse(entry.path(), file.error());
      continue;
    }
    auto header = engine::ParseSnapshotHeader(file.bytes());
    if (auto* err = std::get_if<engine::SnapshotError>(&header)) {
      refuse(entry.path(), err->reason);
      continue;
    }
    const auto& h = std::get<engine::SnapshotHeader>(header);
    if (h.generation != generation || h.shard_index != index) {
      refuse(entry.path(), "header does not match the file name");
      continue;
    }
    auto [it, added] = counts.emplace(generation, h.shard_count);
    if (!added && it->second != h.shard_count) {
      refuse(entry.path(), "shard count differs from its generation's other files");
      continue;
    }
    generations[generation][index] = entry.path();
  }
  result.generation = newest + 1;
  if (refused_files > 0) return result;  // start empty

  // The newest generation with a file for every shard it names. A newer, incomplete one is what
  // a crash during a run's first round leaves; it holds nothing the older set lacks but the
  // ticks of that short first interval.
  const std::map<unsigned, fs::path>* chosen = nullptr;
  std::uint64_t chosen_generation = 0;
  for (auto it = generations.rbegin(); it != generations.rend(); ++it) {
    if (it->second.size() == counts[it->first]) {
      chosen = &it->second;
      chosen_generation = it->first;
      break;
    }
    obs::Log(obs::Level::kWarn, "snapshot_incomplete",
             "snapshot generation without a file for every shard; an older one is used",
             {{"generation", it->first},
              {"files", it->second.size()},
              {"shards", static_cast<std::uint64_t>(counts[it->first])}});
  }
  if (chosen == nullptr) return result;

  std::vector<std::unique_ptr<MappedFile>> files;
  std::vector<engine::ParsedSnapshot> parsed;
  std::optional<std::uint64_t> epoch;
  bool clean = true;
  for (const auto& [index, path] : *chosen) {
    files.push_back(std::make_unique<MappedFile>(path.string()));
    auto p = engine::ParseSnapshot(files.back()->bytes());
    if (auto* err = std::get_if<engine::SnapshotError>(&p)) {
      refuse(path, err->reason);
      continue;
    }
    auto& ok = std::get<engine::ParsedSnapshot>(p);
    if (epoch && *epoch != ok.header.stream_epoch) {
      refuse(path, "stream epoch differs from its generation's other files");
      continue;
    }
    epoch = ok.header.stream_epoch;
    clean = clean && (ok.header.flags & engine::kSnapshotFinal) != 0;
    parsed.push_back(std::move(ok));
  }
  if (refused_files > 0) return result;  // start empty

  const std::size_t cap = shards.empty() ? 0 : shards[0]->options().max_topics;
  const engine::RestorePlan plan =
      engine::PlanRestore(parsed, static_cast<unsigned>(shards.size()), cap);
  std::size_t restored = 0;
  std::size_t refused = 0;
  for (std::size_t s = 0; s < plan.shards.size(); ++s) {
    for (const engine::PlannedTopic& p : plan.shards[s]) {
      const auto image =
          engine::DecodeTopic(files[p.file]->bytes(), parsed[p.file].topics[p.topic]);
      if (image && shards[s]->Restore(*image)) {
        ++restored;
      } else {
        ++refused;
      }
    }
  }
  // Forgotten numberings go to the shard that owns their topic in this run (S8c).
  std::vector<std::vector<engine::Tombstone>> buried(shards.size());
  std::int64_t buried_dropped = 0;
  for (auto& p : parsed) {
    buried_dropped = std::max(buried_dropped, p.tombstones_dropped_order_ns);
    for (auto& t : p.tombstones) {
      const unsigned s = engine::ShardOf(t.name, static_cast<unsigned>(shards.size()));
      buried[s].push_back(std::move(t));
    }
  }
  for (std::size_t s = 0; s < shards.size(); ++s) {
    shards[s]->RestoreTombstones(std::move(buried[s]), buried_dropped);
  }
  stats.topics_restored.store(restored);
  stats.topics_dropped.store(plan.dropped + refused);
  result.topics = restored;
  result.clean = clean;
  if (epoch && *epoch != 0) result.stream_epoch = epoch;
  obs::Log(obs::Level::kInfo, "snapshot_restored", "history restored from DATA_DIR",
           {{"dir", dir},
            {"generation", chosen_generation},
            {"files", parsed.size()},
            {"topics", restored},
            {"topics_dropped", plan.dropped + refused},
            {"stream_epoch", epoch.value_or(0)},
            {"clean", clean},
            {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start)
                       .count()}});
  return result;
}

Snapshotter::Snapshotter(std::string dir, std::chrono::milliseconds interval,
                         std::vector<net::Worker*> workers, std::uint64_t generation,
                         std::uint64_t stream_epoch, SnapshotStats& stats)
    : dir_(std::move(dir)),
      interval_(interval),
      workers_(std::move(workers)),
      generation_(generation),
      stream_epoch_(stream_epoch),
      stats_(stats),
      written_(workers_.size()) {}

Snapshotter::~Snapshotter() { Stop(); }

void Snapshotter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Snapshotter::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Snapshotter::Run() {
  auto next = SteadyClock::now() + interval_;
  std::unique_lock lock(mu_);
  while (!cv_.wait_until(lock, next, [this] { return stop_; })) {
    lock.unlock();
    next = SteadyClock::now() + interval_;
    WriteRound("interval", false);
    lock.lock();
  }
}

bool Snapshotter::WriteRound(const char* reason, bool final) {
  std::lock_guard round(round_mu_);
  const auto start = SteadyClock::now();
  std::uint64_t bytes = 0;
  std::uint64_t topics = 0;
  std::chrono::microseconds max_pause{0};
  for (unsigned i = 0; i < workers_.size(); ++i) {
    if (auto err = WriteShard(i, final, bytes, topics, max_pause); !err.empty()) {
      stats_.rounds_failed.fetch_add(1);
      obs::Log(obs::Level::kError, "snapshot_failed",
               "history snapshot not written; the previous one stays",
               {{"dir", dir_}, {"shard", i}, {"reason", err}, {"trigger", reason}});
      return false;
    }
  }
  RemoveOlderGenerations();
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start);
  stats_.rounds_written.fetch_add(1);
  stats_.last_success_ns.store(common::WallClockNs());
  stats_.last_round_us.store(static_cast<std::uint64_t>(took.count()));
  stats_.last_bytes.store(bytes);
  stats_.last_max_pause_us.store(static_cast<std::uint64_t>(max_pause.count()));
  // Every interval at debug; the final one (drain) at info.
  obs::Log(final ? obs::Level::kInfo : obs::Level::kDebug, "snapshot_written",
           "history snapshot written",
           {{"trigger", reason},
            {"generation", generation_},
            {"files", static_cast<std::uint64_t>(workers_.size())},
            {"topics", topics},
            {"bytes", bytes},
            {"ms", took.count() / 1000},
            {"max_pause_us", max_pause.count()}});
  return true;
}

std::string Snapshotter::WriteShard(unsigned index, bool final, std::uint64_t& bytes,
                                    std::uint64_t& topics, std::chrono::microseconds& max_pause) {
  net::Worker* worker = workers_[index];
  // What the shard's state is now; a periodic round leaves an unchanged shard's file as it is.
  auto counted = std::make_shared<std::promise<std::uint64_t>>();
  auto count_ready = counted->get_future();
  boost::asio::post(worker->io(),
                    [worker, counted] { counted->set_value(worker->shard().ChangeCount()); });
  if (count_ready.wait_for(kSliceWait) != std::future_status::ready) {
    return "worker " + std::to_string(index) + " did not answer in time";
  }
  const std::uint64_t change_count = count_ready.get();
  Written& last = written_[index];
  if (!final && last.valid && last.change_count == change_count) {
    bytes += last.bytes;
    topics += last.topics;
    return {};
  }
  last.valid = false;
  const std::string final_path = (fs::path(dir_) / FileName(generation_, index)).string();
  const std::string temp_path = final_path + std::string(kTempSuffix);
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("open " + temp_path);
  auto fail = [&](std::string why) {
    ::close(fd);
    ::unlink(temp_path.c_str());
    return why;
  };
  if (!WriteAll(fd, std::string(engine::kSnapshotHeaderSize, '\0'))) return fail(Errno("write"));

  // The slice job lives until both sides are done with it (a late worker still writes into it).
  struct Job {
    engine::SnapshotCursor cursor;
    std::string bytes;
    std::chrono::microseconds pause{0};
  };
  auto job = std::make_shared<Job>();
  // Room for a whole slice, so that a worker does not grow the buffer while it writes one.
  job->bytes.reserve(2 * kSliceBytes);
  engine::SnapshotHeader header;
  header.generation = generation_;
  header.shard_index = index;
  header.shard_count = static_cast<std::uint32_t>(workers_.size());
  header.stream_epoch = stream_epoch_;
  header.flags = final ? engine::kSnapshotFinal : 0;
  std::uint32_t crc = 0;
  while (!job->cursor.finished) {
    auto done = std::make_shared<std::promise<void>>();
    auto ready = done->get_future();
    boost::asio::post(worker->io(), [worker, job, done] {
      const auto t0 = SteadyClock::now();
      job->bytes.clear();
      worker->shard().SnapshotSlice(job->cursor, job->bytes, kSliceBytes);
      job->pause = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
      done->set_value();
    });
    if (ready.wait_for(kSliceWait) != std::future_status::ready) {
      return fail("worker " + std::to_string(index) + " did not serve a slice in time");
    }
    max_pause = std::max(max_pause, job->pause);
    crc = engine::Crc32c(crc, job->bytes);
    header.body_length += job->bytes.size();
    if (!WriteAll(fd, job->bytes)) return fail(Errno("write"));
  }
  header.topics = job->cursor.topics;
  header.body_crc = crc;
  header.written_ns = common::WallClockNs();
  const std::string head = engine::EncodeSnapshotHeader(header);
  if (::pwrite(fd, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) {
    return fail(Errno("write header"));
  }
  if (::fsync(fd) != 0) return fail(Errno("fsync"));
  if (::close(fd) != 0) {
    ::unlink(temp_path.c_str());
    return Errno("close");
  }
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    const std::string why = Errno("rename");
    ::unlink(temp_path.c_str());
    return why;
  }
  if (!FsyncDir(dir_)) return Errno("fsync " + dir_);
  bytes += engine::kSnapshotHeaderSize + header.body_length;
  topics += header.topics;
  // Anything applied after the count was read changed it, so the next round writes again.
  last =
      Written{true, change_count, header.topics, engine::kSnapshotHeaderSize + header.body_length};
  return {};
}

void Snapshotter::RemoveOlderGenerations() {
  std::error_code ec;
  bool removed = false;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::uint64_t generation = 0;
    unsigned index = 0;
    if (!ParseFileName(entry.path().filename().string(), generation, index)) continue;
    if (generation == generation_ && index < workers_.size()) continue;
    removed = fs::remove(entry.path(), ec) || removed;
  }
  if (removed) FsyncDir(dir_);
}

}  // namespace tickwire::server
