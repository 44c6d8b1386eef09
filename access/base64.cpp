// Base64 for signed URLs: see base64.hpp.
#include "access/base64.hpp"

#include <array>
#include <cstdint>

namespace storecache::access {

namespace {

constexpr std::uint8_t invalid = 0xff;

struct alphabet_chars {
  char c62;
  char c63;
  char pad;
};

constexpr alphabet_chars chars_of(base64_alphabet a) {
  switch (a) {
    case base64_alphabet::standard:
      return {'+', '/', '='};
    case base64_alphabet::url:
      return {'-', '_', '='};
    case base64_alphabet::cloudfront:
      return {'-', '~', '_'};
  }
  return {'+', '/', '='};
}

std::uint8_t value_of(char c, const alphabet_chars& a) {
  if (c >= 'A' && c <= 'Z') return static_cast<std::uint8_t>(c - 'A');
  if (c >= 'a' && c <= 'z') return static_cast<std::uint8_t>(c - 'a' + 26);
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0' + 52);
  if (c == a.c62) return 62;
  if (c == a.c63) return 63;
  return invalid;
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view in, base64_alphabet alphabet,
                                         std::size_t max_out) {
  const alphabet_chars a = chars_of(alphabet);
  // Padding is optional, but when present it completes the last quantum exactly.
  std::size_t data_len = in.size();
  std::size_t pads = 0;
  while (data_len > 0 && in[data_len - 1] == a.pad && pads < 2) {
    --data_len;
    ++pads;
  }
  if (pads > 0 && in.size() % 4 != 0) return std::nullopt;
  if (data_len % 4 == 1) return std::nullopt;
  const std::size_t out_len = data_len / 4 * 3 + (data_len % 4 == 0 ? 0 : data_len % 4 - 1);
  if (out_len > max_out) return std::nullopt;
  if (pads > 0 && (data_len % 4 == 0 || 4 - data_len % 4 != pads)) return std::nullopt;

  std::string out;
  out.reserve(out_len);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < data_len; ++i) {
    const std::uint8_t v = value_of(in[i], a);
    if (v == invalid) return std::nullopt;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical tail
  return out;
}

std::string base64_encode(std::string_view bytes, base64_alphabet alphabet) {
  const alphabet_chars a = chars_of(alphabet);
  static constexpr std::string_view letters =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  auto digit = [&](std::uint32_t v) {
    if (v < 62) return letters[v];
    return v == 62 ? a.c62 : a.c63;
  };
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]))
                                << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += digit(n >> 18);
    out += digit((n >> 12) & 63);
    out += digit((n >> 6) & 63);
    out += digit(n & 63);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += digit(n >> 18);
    out += digit((n >> 12) & 63);
    if (rest == 2) out += digit((n >> 6) & 63);
    if (alphabet != base64_alphabet::url) out.append(3 - rest, a.pad);
  }
  return out;
}

}  // namespace storecache::access
