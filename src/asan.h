/* asan.h — HR_ASAN is 1 in a build under AddressSanitizer, whose reports
 * need every block really freed: caches of freed blocks (kept requests and
 * transfers, the JSON pool) are off there. */
#ifndef HR_ASAN_H
#define HR_ASAN_H
#if defined(__SANITIZE_ADDRESS__)
#define HR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HR_ASAN 1
#endif
#endif
#ifndef HR_ASAN
#define HR_ASAN 0
#endif
#endif
