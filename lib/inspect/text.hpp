// Internal rendering helpers of the inspect component (see inspect.hpp for
// the exported ones).
#ifndef EVSTORE_LIB_INSPECT_TEXT_HPP_
#define EVSTORE_LIB_INSPECT_TEXT_HPP_

#include <cstdint>
#include <string>
#include <string_view>

#include "evstore/inspect.hpp"

namespace evstore::inspect {

// Lower-case hex of every byte.
void AppendHex(std::string_view s, std::string* out);
// True when `s` is well-formed UTF-8 (NUL allowed).
bool IsUtf8(std::string_view s);
// `label offset  xx xx ...  |ascii|` lines, 16 bytes each (one line when empty).
void AppendHexDump(std::string_view label, std::string_view bytes, std::string* out);
// A record that failed verification, in `format`.
void FormatCorrupt(uint64_t position, std::string_view message, DumpFormat format,
                   std::string_view record, std::string* out);

}  // namespace evstore::inspect

#endif  // EVSTORE_LIB_INSPECT_TEXT_HPP_
