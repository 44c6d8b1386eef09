// The signed-URL test vectors (tests/data/signed_urls/vectors.txt, made by make_vectors.sh with
// the openssl CLI), shared by the access_*_test files of each scheme.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace storecache::access::test {

inline const std::filesystem::path data_dir =
    std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "signed_urls";

// The vector named `name`; fails the test when there is none.
inline std::string vec(const std::string& name) {
  static const std::map<std::string, std::string> vectors = [] {
    std::map<std::string, std::string> m;
    std::ifstream in(data_dir / "vectors.txt");
    std::string k, v;
    while (in >> k >> v)
      m[k] = v;
    return m;
  }();
  const auto it = vectors.find(name);
  REQUIRE(it != vectors.end());
  return it->second;
}

}  // namespace storecache::access::test
