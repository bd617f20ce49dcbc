#pragma once

#include "exchange/messages.h"

namespace tickwire::exchange {

// How an operation reaches another worker (net: a post to its io_context; tests: a queue that
// delays and reorders). The contract is what Asio gives: operations one thread posts to one
// destination run there in the order they were posted, each on the destination's thread, after
// the code that posted them has returned; nothing is promised across sources.
class Poster {
 public:
  virtual ~Poster() = default;
  // Number of workers (= shards); destinations are 0 .. workers() - 1.
  virtual unsigned workers() const = 0;
  // Runs `op` on worker `to` (Exchange::Handle). Any thread; never runs it inline.
  virtual void Post(unsigned to, Op op) = 0;
};

}  // namespace tickwire::exchange
