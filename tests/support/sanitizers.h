#pragma once

// Whether this test binary (and so the server built with it) runs under ASan or TSan: their
// shadow memory and quarantine make RSS figures meaningless and slow everything down, so tests
// that bound memory or time loosen or skip those bounds.
namespace tickwire::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace tickwire::testing
