#include "observability/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tickwire::obs {
namespace {

// Fields of /proc/self/stat after the command name (which may contain spaces), so that
// fields[0] is field 3 ("state") of proc(5).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

void AppendProcessMetrics(Exposition& e) {
  const auto fields = StatFields();
  // proc(5) field n is fields[n - 3].
  if (fields.size() >= 22) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    const double cpu = (std::stod(fields[14 - 3]) + std::stod(fields[15 - 3])) / ticks;
    e.CounterFamily("process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.");
    e.Sample(cpu);
    e.GaugeFamily("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.");
    e.Sample(BootTimeSeconds() + std::stod(fields[22 - 3]) / ticks);
    e.GaugeFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.");
    e.Sample(std::stod(fields[23 - 3]));
    e.GaugeFamily("process_resident_memory_bytes", "Resident memory size in bytes.");
    e.Sample(std::stod(fields[24 - 3]) * page);
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    e.GaugeFamily("process_open_fds", "Number of open file descriptors.");
    // The directory iterator's own descriptor is not counted.
    e.Sample(static_cast<double>(fds > 0 ? fds - 1 : 0));
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    e.GaugeFamily("process_max_fds", "Maximum number of open file descriptors.");
    e.Sample(static_cast<double>(lim.rlim_cur));
  }
}

}  // namespace tickwire::obs
