// Base64 in the three alphabets signed URLs use, decoding bounded and strict: a character
// outside the alphabet, a bad length, or non-zero bits after the last byte fail the decode
// (so one signature has exactly one spelling). Never throws on input bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace storecache::access {

enum class base64_alphabet {
  standard,    // RFC 4648 section 4: '+' '/', '=' padding optional
  url,         // RFC 4648 section 5: '-' '_', '=' padding optional (nginx secure_link, ours)
  cloudfront,  // CloudFront's URL-safe form: '-' for '+', '~' for '/', '_' for '='
};

// The decoded bytes, or nullopt when the input is not valid base64 in that alphabet or would
// decode to more than max_out bytes (checked before anything is allocated).
std::optional<std::string> base64_decode(std::string_view in, base64_alphabet alphabet,
                                         std::size_t max_out);

// Encoding, for tests and tools: url and cloudfront without/with their padding as their users
// write it (url: no padding; cloudfront: '_' padding; standard: '=' padding).
std::string base64_encode(std::string_view bytes, base64_alphabet alphabet);

}  // namespace storecache::access
