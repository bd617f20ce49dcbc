#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tickwire::auth {

// A set of topic patterns, as a users file writes them: a comma-separated list of exact topic
// names (`AAPL`), prefix patterns (`FX.*` matches every topic starting with `FX.`), and `*`
// (every topic). `-` is the empty set. Immutable after parsing; thread-safe to read.
class TopicPatterns {
 public:
  TopicPatterns() = default;
  static TopicPatterns All();
  // Parses a pattern list; on failure returns nullopt and says why in `*error`.
  static std::optional<TopicPatterns> Parse(std::string_view list, std::string* error);

  // True when `topic` (a valid topic name) is in the set.
  bool Matches(std::string_view topic) const;
  // True when every topic starting with `prefix` is in the set (`*`, or a prefix pattern whose
  // prefix starts `prefix`), which is what subscribing to the pattern `prefix*` needs.
  bool CoversPrefix(std::string_view prefix) const;
  // True when the set is every topic (`*`), which is what subscribing to `*` needs.
  bool MatchesAll() const { return all_; }
  bool empty() const { return !all_ && exact_.empty() && prefixes_.empty(); }
  // The list in its text form (for logs).
  std::string ToString() const;

 private:
  bool all_ = false;
  std::vector<std::string> exact_;     // sorted, for binary search
  std::vector<std::string> prefixes_;  // without the trailing '*'
};

// What one user may do.
struct Permissions {
  TopicPatterns publish;
  TopicPatterns subscribe;

  static Permissions All() { return {TopicPatterns::All(), TopicPatterns::All()}; }
};

}  // namespace tickwire::auth
