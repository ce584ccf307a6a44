// UTF-8 validation for names (streams, types, categories).
#ifndef EVSTORE_LIB_COMMON_UTF8_HPP_
#define EVSTORE_LIB_COMMON_UTF8_HPP_

#include <string_view>

namespace evstore {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, at most
// U+10FFFF) and contains no NUL byte.
bool IsValidName(std::string_view s) noexcept;

}  // namespace evstore

#endif  // EVSTORE_LIB_COMMON_UTF8_HPP_
