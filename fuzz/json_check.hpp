// A strict, minimal JSON validator (RFC 8259 values, UTF-8 checked) for the
// fuzz targets that check evstore-inspect's JSON output.
#ifndef EVSTORE_FUZZ_JSON_CHECK_HPP_
#define EVSTORE_FUZZ_JSON_CHECK_HPP_

#include <cstdint>
#include <string_view>

class JsonCheck {
 public:
  // True when `s` is exactly one JSON value, optionally followed by '\n'.
  static bool Valid(std::string_view s) {
    JsonCheck c(s);
    if (!c.Value(0)) return false;
    if (c.i_ < s.size() && s[c.i_] == '\n') c.i_++;
    return c.i_ == s.size();
  }

 private:
  explicit JsonCheck(std::string_view s) : s_(s) {}
  bool More() const { return i_ < s_.size(); }
  char Peek() const { return More() ? s_[i_] : '\0'; }
  bool Eat(char c) {
    if (Peek() != c || !More()) return false;
    i_++;
    return true;
  }
  bool Value(int depth) {
    if (depth > 64) return false;
    switch (Peek()) {
      case '{': {
        i_++;
        if (Eat('}')) return true;
        do {
          if (!String() || !Eat(':') || !Value(depth + 1)) return false;
        } while (Eat(','));
        return Eat('}');
      }
      case '[': {
        i_++;
        if (Eat(']')) return true;
        do {
          if (!Value(depth + 1)) return false;
        } while (Eat(','));
        return Eat(']');
      }
      case '"': return String();
      case 't': return Word("true");
      case 'f': return Word("false");
      case 'n': return Word("null");
      default: return Number();
    }
  }
  bool Word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool Digits() {
    size_t start = i_;
    while (More() && Peek() >= '0' && Peek() <= '9') i_++;
    return i_ > start;
  }
  bool Number() {
    Eat('-');
    if (Peek() == '0') {
      i_++;
    } else if (!Digits()) {
      return false;
    }
    if (Eat('.') && !Digits()) return false;
    if (Peek() == 'e' || Peek() == 'E') {
      i_++;
      if (Peek() == '+' || Peek() == '-') i_++;
      if (!Digits()) return false;
    }
    return true;
  }
  bool String() {
    if (!Eat('"')) return false;
    while (More()) {
      auto c = static_cast<uint8_t>(s_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        i_++;
        char e = Peek();
        if (!More()) return false;
        i_++;
        if (e == 'u') {
          for (int k = 0; k < 4; k++) {
            char h = Peek();
            if (!More() || !((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
              return false;
            i_++;
          }
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        i_++;
        continue;
      }
      size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (n == 0 || i_ + n > s_.size()) return false;
      uint32_t cp = c & (0x7f >> n);
      for (size_t k = 1; k < n; k++) {
        auto b = static_cast<uint8_t>(s_[i_ + k]);
        if ((b & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (b & 0x3f);
      }
      static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
      i_ += n;
    }
    return false;
  }

  std::string_view s_;
  size_t i_ = 0;
};

#endif  // EVSTORE_FUZZ_JSON_CHECK_HPP_
