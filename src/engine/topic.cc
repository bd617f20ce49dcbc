#include "engine/topic.h"

namespace tickwire::engine {

bool IsValidTopic(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicLength) return false;
  for (const char c : topic) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::uint64_t TopicHash(std::string_view topic) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : topic) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace tickwire::engine
