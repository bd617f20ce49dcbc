#pragma once

#include "observability/metrics.h"

namespace tickwire::obs {

// Appends the standard process_* metrics (CPU seconds, resident and virtual memory, open and
// maximum file descriptors, start time), read from /proc/self at scrape time. On a system
// without /proc the families are left out.
void AppendProcessMetrics(Exposition& e);

}  // namespace tickwire::obs
