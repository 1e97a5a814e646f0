#pragma once
/// @file
/// UTF-8 <-> Unicode code points.
///
/// Token strings are compared over **code points** (the reference uses Python `str`, whose elements are
/// code points): `"▁"` (U+2581) is one symbol, not three bytes. Everything in fusekit::vocab decodes a
/// string once with `utf8_decode` and then works on `std::u32string`.
///
/// Invalid input is never an error here: every maximal ill-formed subsequence becomes U+FFFD, the
/// behaviour of Python's `bytes.decode("utf-8", errors="replace")` and of the WHATWG decoder. This is
/// what a Hugging Face `decode([id])` produces for a byte-fallback token that is an incomplete UTF-8
/// fragment.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fusekit::vocab {

/// U+FFFD REPLACEMENT CHARACTER.
inline constexpr char32_t replacement_character = 0xFFFD;

/// Decodes UTF-8 into code points; ill-formed sequences become U+FFFD (one per maximal subpart).
inline std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out.push_back(replacement_character);
      ++i;
      continue;
    }
    std::size_t k = 1;
    bool ok = true;
    for (; k < static_cast<std::size_t>(len); ++k) {
      if (i + k >= n) {
        ok = false;
        break;
      }
      const unsigned char b = p[i + k];
      const unsigned char l = (k == 1) ? lo : 0x80;
      const unsigned char h = (k == 1) ? hi : 0xBF;
      if (b < l || b > h) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
      out.push_back(replacement_character);  // the maximal subpart p[i, i+k) is replaced once
      i += k;
      continue;
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

/// Appends the UTF-8 encoding of one code point (surrogates and values > U+10FFFF become U+FFFD).
inline void utf8_append(std::string& out, char32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = replacement_character;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Encodes code points as UTF-8.
inline std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

/// Bytes -> valid UTF-8 text (ill-formed parts replaced by U+FFFD), like Python's `errors="replace"`.
inline std::string utf8_sanitize(std::string_view bytes) { return utf8_encode(utf8_decode(bytes)); }

/// True if `s` is well-formed UTF-8.
inline bool utf8_is_valid(std::string_view s) {
  const std::u32string d = utf8_decode(s);
  return utf8_encode(d) == s;
}

}  // namespace fusekit::vocab
