#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace tickwire::engine {

// A small number standing for an authenticated user name (interned per process, or per log in
// multi-instance mode). Topics remember the user who created them, for MAX_TOPICS_PER_USER.
using UserId = std::uint32_t;

// Why a tick for a new topic was not applied (PROTOCOL S6b). Values index metric labels.
enum class Refusal : std::uint8_t {
  kNone = 0,
  kTopicLimit = 1,      // MAX_TOPICS reached and the least recently published topic has open bars
  kUserTopicLimit = 2,  // the creating user's MAX_TOPICS_PER_USER reached, likewise
};
inline constexpr std::size_t kRefusalKinds = 3;

// A topic's place in its owner's least-recently-published lists: one over every topic, one per
// creating user (kept only while a per-user cap is set).
template <typename T>
struct CapLinks {
  T* prev = nullptr;  // towards the most recently published
  T* next = nullptr;  // towards the least recently published
  T* user_prev = nullptr;
  T* user_next = nullptr;
  void* user_list = nullptr;  // the creating user's list (TopicCap::UserList)
  UserId user = 0;
};

// The topic cap of one owner of topics (a shard, or the shared log's topic directory in
// multi-instance mode): at most `max_topics` topics, at most `max_per_user` of them created by
// one user (0: no per-user cap). A new topic takes the place of the least recently published
// one (of its user's, when that user is at its cap) only if the owner says that one may go;
// otherwise the new topic is refused. Topics of type T hold a CapLinks<T> member `Links`.
// Single-threaded; every operation is O(1).
template <typename T, CapLinks<T> T::*Links>
class TopicCap {
 public:
  TopicCap(std::size_t max_topics, std::size_t max_per_user)
      : max_topics_(max_topics), max_per_user_(max_per_user) {}
  TopicCap(const TopicCap&) = delete;
  TopicCap& operator=(const TopicCap&) = delete;

  // Makes room for one more topic created by `user`: evicts (calls `evict(T&)`, which must
  // Remove it) the least recently published topic of that user when the user is at its cap, then
  // the least recently published topic overall when the cap is reached, each only when
  // `evictable(const T&)` allows. Returns kNone when the new topic now fits.
  template <typename Evictable, typename Evict>
  Refusal MakeRoom(UserId user, Evictable&& evictable, Evict&& evict) {
    if (max_per_user_ > 0) {
      auto it = users_.find(user);
      if (it != users_.end() && it->second.count >= max_per_user_) {
        T* victim = it->second.tail;
        if (victim == nullptr || !evictable(*victim)) return Refusal::kUserTopicLimit;
        evict(*victim);
      }
    }
    if (size_ >= max_topics_) {
      if (tail_ == nullptr || !evictable(*tail_)) return Refusal::kTopicLimit;
      evict(*tail_);
    }
    return Refusal::kNone;
  }

  // A new topic created by `user`, the most recently published now.
  void Insert(T& t, UserId user) {
    CapLinks<T>& l = t.*Links;
    l.user = user;
    l.prev = nullptr;
    l.next = head_;
    (head_ != nullptr ? (head_->*Links).prev : tail_) = &t;
    head_ = &t;
    ++size_;
    if (max_per_user_ == 0) return;
    UserList& u = users_[user];
    l.user_list = &u;
    l.user_prev = nullptr;
    l.user_next = u.head;
    (u.head != nullptr ? (u.head->*Links).user_prev : u.tail) = &t;
    u.head = &t;
    ++u.count;
  }

  // `t` was just published to.
  void Touch(T& t) {
    if (head_ == &t) return;  // a steady stream on one topic: nothing to move
    CapLinks<T>& l = t.*Links;
    Unlink(t);
    l.prev = nullptr;
    l.next = head_;
    (head_->*Links).prev = &t;
    head_ = &t;
    if (l.user_list == nullptr) return;
    auto& u = *static_cast<UserList*>(l.user_list);
    if (u.head == &t) return;
    UnlinkUser(t, u);
    l.user_prev = nullptr;
    l.user_next = u.head;
    (u.head != nullptr ? (u.head->*Links).user_prev : u.tail) = &t;
    u.head = &t;
  }

  // `t` is being forgotten.
  void Remove(T& t) {
    CapLinks<T>& l = t.*Links;
    Unlink(t);
    --size_;
    if (l.user_list == nullptr) return;
    auto& u = *static_cast<UserList*>(l.user_list);
    UnlinkUser(t, u);
    l.user_list = nullptr;
    if (--u.count == 0) users_.erase(l.user);
  }

  std::size_t size() const { return size_; }
  std::size_t max_topics() const { return max_topics_; }
  std::size_t max_per_user() const { return max_per_user_; }
  // Topics created by `user` (0 when there is no per-user cap).
  std::size_t CountOf(UserId user) const {
    auto it = users_.find(user);
    return it == users_.end() ? 0 : it->second.count;
  }
  // The least recently published topic (null when there is none).
  const T* Oldest() const { return tail_; }

 private:
  struct UserList {
    T* head = nullptr;
    T* tail = nullptr;
    std::size_t count = 0;
  };

  void Unlink(T& t) {
    CapLinks<T>& l = t.*Links;
    (l.prev != nullptr ? (l.prev->*Links).next : head_) = l.next;
    (l.next != nullptr ? (l.next->*Links).prev : tail_) = l.prev;
    l.prev = l.next = nullptr;
  }
  void UnlinkUser(T& t, UserList& u) {
    CapLinks<T>& l = t.*Links;
    (l.user_prev != nullptr ? (l.user_prev->*Links).user_next : u.head) = l.user_next;
    (l.user_next != nullptr ? (l.user_next->*Links).user_prev : u.tail) = l.user_prev;
    l.user_prev = l.user_next = nullptr;
  }

  std::size_t max_topics_;
  std::size_t max_per_user_;
  std::size_t size_ = 0;
  T* head_ = nullptr;  // most recently published
  T* tail_ = nullptr;
  // Per creating user (only with a per-user cap); node-based, so lists stay put on rehash.
  std::unordered_map<UserId, UserList> users_;
};

}  // namespace tickwire::engine
