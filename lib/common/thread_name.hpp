// Names the calling thread, so the threads evstore starts are told apart in
// top -H, ps -L, gdb and perf: "evs-" and what the thread does. Linux keeps
// 15 bytes of a name; longer ones are cut. Failure is ignored: a name is only
// a help to whoever looks.
#ifndef EVSTORE_LIB_COMMON_THREAD_NAME_HPP_
#define EVSTORE_LIB_COMMON_THREAD_NAME_HPP_

#include <pthread.h>

#include <string_view>

namespace evstore {

inline void NameThisThread(std::string_view name) {
  char buf[16];
  const size_t n = name.size() < sizeof buf ? name.size() : sizeof buf - 1;
  for (size_t i = 0; i < n; i++) buf[i] = name[i];
  buf[n] = '\0';
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), buf);
#endif
}

}  // namespace evstore

#endif  // EVSTORE_LIB_COMMON_THREAD_NAME_HPP_
