#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/topic_cap.h"

namespace tickwire::net {

// Small numbers for authenticated user names, so that owner shards can remember who created a
// topic (MAX_TOPICS_PER_USER) in four bytes. Any thread; taken once per AUTH. Only names that
// authenticated are interned, so the table is bounded by the configured users (STREAM_USER and
// the users file, over all reloads).
class UserIds {
 public:
  engine::UserId Intern(std::string_view user) {
    std::lock_guard lock(mu_);
    auto [it, added] = ids_.try_emplace(std::string(user), next_);
    if (added) ++next_;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, engine::UserId> ids_;
  engine::UserId next_ = 1;  // 0: no user (tests, tools)
};

}  // namespace tickwire::net
