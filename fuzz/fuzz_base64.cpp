// Base64 in the three alphabets of signed URLs (access/base64.hpp): strict and bounded. What
// decodes has exactly one spelling: encoding the bytes again and decoding gives them back.
#include <cstdint>

#include "access/base64.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::access;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = storecache::fuzz::as_text(data, size);
  for (const auto alphabet :
       {base64_alphabet::standard, base64_alphabet::url, base64_alphabet::cloudfront}) {
    const auto out = base64_decode(in, alphabet, 4096);
    if (!out) continue;
    FUZZ_CHECK(out->size() <= 4096 && out->size() <= in.size());
    const auto again = base64_decode(base64_encode(*out, alphabet), alphabet, 4096);
    FUZZ_CHECK(again && *again == *out);
    const auto small = base64_decode(in, alphabet, out->size() / 2);
    if (out->size() > 1) FUZZ_CHECK(!small);
  }
  // Encoding any bytes decodes back.
  for (const auto alphabet :
       {base64_alphabet::standard, base64_alphabet::url, base64_alphabet::cloudfront}) {
    const auto back = base64_decode(base64_encode(in, alphabet), alphabet, in.size());
    FUZZ_CHECK(back && *back == in);
  }
  return 0;
}
