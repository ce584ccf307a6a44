// C API: metrics text and the logging hook (evstore_metrics.h).
#include <cstdlib>
#include <cstring>
#include <string>

#include "capi/capi_internal.hpp"
#include "evstore/store.hpp"

// The options handle, as capi_store.cpp defines it (the one definition rule
// allows a token-identical definition in each translation unit that needs
// the members).
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;

int evs_store_metrics_text(evs_store_t* store, char** text, size_t* len, char** errmsg) {
  if (text) *text = nullptr;
  if (len) *len = 0;
  return Guard(errmsg, [&]() -> int {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(text, "text");
    auto r = evstore::capi::StoreOf(store).metrics_text();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    char* out = static_cast<char*>(std::malloc(r->size() + 1));
    if (out == nullptr) return Fail(errmsg, EVS_NO_MEMORY, "out of memory");
    std::memcpy(out, r->data(), r->size());
    out[r->size()] = '\0';
    *text = out;
    if (len) *len = r->size();
    return EVS_OK;
  });
}

int evs_options_set_log(evs_options_t* options, evs_log_fn fn, void* user_data, int min_level,
                        char** errmsg) {
  return Guard(errmsg, [&]() -> int {
    EVS_CHECK_ARG(options, "options");
    if (min_level < EVS_LOG_DEBUG || min_level > EVS_LOG_FATAL)
      return Fail(errmsg, EVS_INVALID_ARGUMENT,
                  {"min_level ", std::to_string(min_level), " is not an EVS_LOG_* level"});
    options->options.log_level = static_cast<evstore::LogLevel>(min_level);
    if (fn == nullptr) {
      options->options.log = nullptr;
      return EVS_OK;
    }
    options->options.log = [fn, user_data](evstore::LogLevel level, std::string_view msg) {
      // NUL-terminated for C; a message that cannot be copied is dropped.
      std::string copy(msg);
      fn(user_data, static_cast<int>(level), copy.c_str(), copy.size());
    };
    return EVS_OK;
  });
}
