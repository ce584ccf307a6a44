// A JSON object built field by field, in insertion order, for the report of
// `evstore-bench all`. Numbers that are not finite become null (JSON has no
// NaN); strings are escaped.
//
// Thread safety: none; a plain value.
#ifndef EVSTORE_TOOLS_BENCH_JSON_HPP_
#define EVSTORE_TOOLS_BENCH_JSON_HPP_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace evbench {

class Json {
 public:
  Json& Num(std::string_view key, double v) { return Raw(key, Number(v)); }
  Json& Int(std::string_view key, int64_t v) { return Raw(key, std::to_string(v)); }
  Json& Bool(std::string_view key, bool v) { return Raw(key, v ? "true" : "false"); }
  Json& Str(std::string_view key, std::string_view v) { return Raw(key, Quote(v)); }
  Json& Obj(std::string_view key, const Json& v) { return Raw(key, v.str()); }
  Json& Arr(std::string_view key, const std::vector<Json>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + v[i].str();
    return Raw(key, s + "]");
  }
  // `json` must be a complete JSON value (another scenario's JSON line).
  Json& Raw(std::string_view key, std::string_view json) {
    body_ += (body_.empty() ? "" : ",") + Quote(key) + ":" + std::string(json);
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

  static std::string Number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[40];
    // Integral values print without a fraction; others with 4 significant
    // decimals past the point where that matters (ratios, microseconds).
    if (v == std::floor(v) && std::fabs(v) < 1e15)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else
      std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  static std::string Quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      unsigned char u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", u);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

 private:
  std::string body_;
};

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_JSON_HPP_
