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

#endif  // EVSTORE_EXPORT_HPP_
