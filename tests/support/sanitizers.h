#pragma once

namespace tickwire::testing {

// Whether this build runs under ASan or TSan. Their runtimes add shadow memory and hold freed
// memory in quarantine, so memory figures (RSS) of sanitized builds need their own bounds or
// cannot be compared.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

}  // namespace tickwire::testing
