#pragma once

#include <cassert>
#include <thread>

namespace tickwire::exchange {

// Checks that state owned by one worker is touched only on that worker's thread (the house rule:
// assert the owner, never add a mutex). Active when TICKWIRE_THREAD_CHECKS is set (the debug,
// asan and tsan presets); in the release build it is empty and every call compiles away.
class OwnerThread {
 public:
#ifdef TICKWIRE_THREAD_CHECKS
  // Makes the calling thread the owner (the worker's thread, before it runs anything else).
  void Bind() { owner_ = std::this_thread::get_id(); }
  // True while no thread is bound (set-up, tear-down) or when called on the owner.
  bool OnOwner() const {
    return owner_ == std::thread::id{} || owner_ == std::this_thread::get_id();
  }

 private:
  std::thread::id owner_{};
#else
  void Bind() {}
  bool OnOwner() const { return true; }
#endif
};

}  // namespace tickwire::exchange

// Aborts (in checked builds) when `checker` is used off its owning thread.
#ifdef TICKWIRE_THREAD_CHECKS
#define TICKWIRE_ASSERT_OWNER(checker)                                                        \
  do {                                                                                        \
    if (!(checker).OnOwner()) ::tickwire::exchange::OwnerThreadViolation(__FILE__, __LINE__); \
  } while (false)
namespace tickwire::exchange {
[[noreturn]] void OwnerThreadViolation(const char* file, int line) noexcept;
}
#else
#define TICKWIRE_ASSERT_OWNER(checker) \
  do {                                 \
  } while (false)
#endif
