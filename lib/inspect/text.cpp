// Text, JSON and hex renderings of events, shared by Dump and the tool.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "inspect/text.hpp"

namespace evstore::inspect {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0.
size_t Utf8Len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

const char kHex[] = "0123456789abcdef";

void AppendHexByte(uint8_t c, std::string* out) {
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t n = Utf8Len(s, i);
    if (n == 1) {
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out->append("\\u00");
            AppendHexByte(c, out);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      i++;
    } else if (n > 1) {
      out->append(s.substr(i, n));
      i += n;
    } else {
      out->append("\\u00");
      AppendHexByte(c, out);
      i++;
    }
  }
  out->push_back('"');
}

void AppendEscaped(std::string_view s, std::string* out) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t n = Utf8Len(s, i);
    if (n > 1) {
      out->append(s.substr(i, n));
      i += n;
      continue;
    }
    if (c == '\\') {
      out->append("\\\\");
    } else if (c >= 0x20 && c < 0x7f) {
      out->push_back(static_cast<char>(c));
    } else {
      out->append("\\x");
      AppendHexByte(c, out);
    }
    i++;
  }
}

void AppendHex(std::string_view s, std::string* out) {
  for (char c : s) AppendHexByte(static_cast<uint8_t>(c), out);
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8Len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendHexDump(std::string_view label, std::string_view bytes, std::string* out) {
  char buf[32];
  for (size_t off = 0; off < bytes.size() || off == 0; off += 16) {
    out->append("  ");
    out->append(label);
    std::snprintf(buf, sizeof buf, " %08zx ", off);
    out->append(buf);
    for (size_t k = 0; k < 16; k++) {
      if (off + k < bytes.size()) {
        out->push_back(' ');
        AppendHexByte(static_cast<uint8_t>(bytes[off + k]), out);
      } else {
        out->append("   ");
      }
    }
    out->append("  |");
    for (size_t k = 0; k < 16 && off + k < bytes.size(); k++) {
      auto c = static_cast<uint8_t>(bytes[off + k]);
      out->push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
    }
    out->append("|\n");
    if (bytes.empty()) break;
  }
}

void AppendTime(int64_t ms, std::string* out) {
  // Civil date from days since the epoch (H. Hinnant's algorithm), valid for
  // every int64 millisecond value.
  int64_t secs = ms / 1000, msr = ms % 1000;
  if (msr < 0) {
    msr += 1000;
    secs--;
  }
  int64_t days = secs / 86400, sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64
                ":%02" PRId64 ":%02" PRId64 ".%03" PRId64 "Z",
                y, m, d, sod / 3600, sod / 60 % 60, sod % 60, msr);
  out->append(buf);
}

void FormatEvent(const EventView& e, DumpFormat format, std::string_view record,
                 std::string* out) {
  std::string num;
  switch (format) {
    case DumpFormat::kText:
      out->append("#" + std::to_string(e.position) + " ");
      AppendEscaped(e.stream, out);
      out->append(" v" + std::to_string(e.version) + " ");
      AppendEscaped(e.type, out);
      out->push_back(' ');
      AppendTime(e.timestamp_ms, out);
      out->append(" id=" + e.id.ToString());
      if (!e.content_type.empty()) {
        out->append(" content_type=");
        AppendEscaped(e.content_type, out);
      }
      out->append(" data=");
      AppendEscaped(e.data, out);
      if (!e.metadata.empty()) {
        out->append(" metadata=");
        AppendEscaped(e.metadata, out);
      }
      // Provenance and layout version only when they say something.
      if (!e.correlation_id.empty()) {
        out->append(" correlation=");
        AppendEscaped(e.correlation_id, out);
      }
      if (!e.causation_id.empty()) {
        out->append(" causation=");
        AppendEscaped(e.causation_id, out);
      }
      if (e.schema_version != 1) out->append(" schema=" + std::to_string(e.schema_version));
      out->push_back('\n');
      break;
    case DumpFormat::kJson:
      out->append("{\"position\":" + std::to_string(e.position) + ",\"stream\":");
      AppendJsonString(e.stream, out);
      out->append(",\"version\":" + std::to_string(e.version) + ",\"type\":");
      AppendJsonString(e.type, out);
      out->append(",\"id\":\"" + e.id.ToString() + "\",\"timestamp_ms\":" +
                  std::to_string(e.timestamp_ms) + ",\"time\":\"");
      AppendTime(e.timestamp_ms, out);
      out->append("\",\"content_type\":");
      AppendJsonString(e.content_type, out);
      for (auto [name, bytes] : {std::pair<const char*, std::string_view>{"data", e.data},
                                 {"metadata", e.metadata}}) {
        out->append(",\"");
        out->append(name);
        if (IsUtf8(bytes)) {
          out->append("\":");
          AppendJsonString(bytes, out);
        } else {
          out->append("_hex\":\"");
          AppendHex(bytes, out);
          out->push_back('"');
        }
      }
      out->append(",\"correlation_id\":");
      AppendJsonString(e.correlation_id, out);
      out->append(",\"causation_id\":");
      AppendJsonString(e.causation_id, out);
      out->append(",\"schema_version\":" + std::to_string(e.schema_version) + "}\n");
      break;
    case DumpFormat::kHex: {
      out->append("position " + std::to_string(e.position) + "  stream \"");
      AppendEscaped(e.stream, out);
      out->append("\" version " + std::to_string(e.version) + "  type \"");
      AppendEscaped(e.type, out);
      out->append("\"  record " + std::to_string(record.size()) + " bytes\n");
      format::Be64 key(e.position);
      AppendHexDump("key  ", key.view(), out);
      AppendHexDump("value", record, out);
      break;
    }
  }
}

void FormatCorrupt(uint64_t position, std::string_view message, DumpFormat format,
                   std::string_view record, std::string* out) {
  switch (format) {
    case DumpFormat::kText:
      out->append("#" + std::to_string(position) + " CORRUPT ");
      AppendEscaped(message, out);
      out->push_back('\n');
      break;
    case DumpFormat::kJson:
      out->append("{\"position\":" + std::to_string(position) + ",\"error\":");
      AppendJsonString(message, out);
      out->append("}\n");
      break;
    case DumpFormat::kHex: {
      out->append("position " + std::to_string(position) + "  CORRUPT ");
      AppendEscaped(message, out);
      out->append("  record " + std::to_string(record.size()) + " bytes\n");
      format::Be64 key(position);
      AppendHexDump("key  ", key.view(), out);
      AppendHexDump("value", record, out);
      break;
    }
  }
}

}  // namespace evstore::inspect
