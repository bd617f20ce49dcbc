#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace tickwire::testing {

// Loopback helpers for tests that start external processes (nats-server, haproxy, servers on
// ports chosen in advance).

// A TCP port on 127.0.0.1 that was free a moment ago (bound and released; the caller binds it
// right after and retries if it was taken meanwhile). 0 on error.
std::uint16_t FreePort();

// Polls until something accepts on 127.0.0.1:`port`, for at most `timeout`.
bool WaitForListener(std::uint16_t port, std::chrono::milliseconds timeout);

// One row of HAProxy's CSV statistics, by column name (pxname, svname, status, check_status...).
using HaproxyStatsRow = std::map<std::string, std::string>;
// The servers of `backend` from the stats page on 127.0.0.1:`stats_port` (/stats;csv), by server
// name; empty when the page cannot be read.
std::map<std::string, HaproxyStatsRow> HaproxyServers(std::uint16_t stats_port,
                                                      const std::string& backend);

}  // namespace tickwire::testing
