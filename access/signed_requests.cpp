#include "access/signed_requests.hpp"

#include <algorithm>
#include <array>

namespace storecache::access {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

constexpr std::array<std::string_view, 21> exact{"signature",
                                                 "policy",
                                                 "key-pair-id",
                                                 "expires",
                                                 "hdnts",
                                                 "hdnea",
                                                 "__token__",
                                                 "md5",
                                                 "st",
                                                 "e",
                                                 "sig",
                                                 "se",
                                                 "sv",
                                                 "sp",
                                                 "skoid",
                                                 "sktid",
                                                 "googleaccessid",
                                                 "token",
                                                 "auth",
                                                 "hash",
                                                 "exp"};
constexpr std::array<std::string_view, 3> prefixes{"x-amz-", "x-goog-", "sc_"};
constexpr std::array<std::string_view, 3> infixes{"signature", "token", "hmac"};

}  // namespace

bool signature_looking(std::string_view name) {
  const std::string n = lower(name);
  if (std::find(exact.begin(), exact.end(), n) != exact.end()) return true;
  for (auto p : prefixes)
    if (n.starts_with(p)) return true;
  for (auto i : infixes)
    if (n.find(i) != std::string::npos) return true;
  return false;
}

bool any_signature_looking(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return signature_looking(n); });
}

std::string signed_variant(std::string_view primary_key) {
  std::string out(primary_key);
  out += "#signed";
  return out;
}

}  // namespace storecache::access
