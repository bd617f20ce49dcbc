// A sliced history replay end to end without sockets: an owner Shard and a subscriber's
// delivery::CatchUp driven by a byte-coded script, with topics created and evicted between
// slices. The script and its oracles are in catch_up_script.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "catch_up_script.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = tickwire::fuzzing::RunCatchUpScript(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "fuzz_catch_up: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
