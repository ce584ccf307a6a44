// EVSTORE_EXPORT marks the symbols that libevstore exports. Everything else in
// the shared library has hidden visibility.
#ifndef EVSTORE_EXPORT_HPP_
#define EVSTORE_EXPORT_HPP_

#if defined(_WIN32)
#if defined(EVSTORE_BUILDING)
#define EVSTORE_EXPORT __declspec(dllexport)
#else
#define EVSTORE_EXPORT __declspec(dllimport)
#endif
#else
#define EVSTORE_EXPORT [[gnu::visibility("default")]]
#endif

// EVSTORE_INTERNAL marks a member of an exported class that only the library
// itself calls (a constructor that takes the internal implementation), so it
// stays hidden like everything else that is not API.
#if defined(_WIN32)
#define EVSTORE_INTERNAL
#else
#define EVSTORE_INTERNAL [[gnu::visibility("hidden")]]
#endif

#endif  // EVSTORE_EXPORT_HPP_
