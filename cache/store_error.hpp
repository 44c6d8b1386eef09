// Errors of the body store (the LMDB layer has its own category, lmdb::errc; file-system
// errors use the system category).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <type_traits>

namespace storecache::cache {

using boost::system::error_code;
template <typename T>
using result = boost::system::result<T>;

enum class store_errc {
  ok = 0,
  too_big,        // larger than max_object_size (or max_size): pass it through instead
  size_mismatch,  // commit: the body is shorter/longer than the size declared at the start
  corrupt_body,   // size or checksum disagrees with the index: never served, entry dropped
  finished,       // the insert handle was already committed or abandoned
  bad_format,     // the index was written by an incompatible version
  not_found,      // no such object
};

const boost::system::error_category& store_category() noexcept;
// The disk (ENOSPC, EDQUOT) or the index map (MDB_MAP_FULL) is full: storing cannot go on
// until space returns, while serving can.
bool is_no_space(const error_code& ec) noexcept;
inline error_code make_error_code(store_errc e) noexcept {
  return error_code(static_cast<int>(e), store_category());
}

}  // namespace storecache::cache

namespace boost::system {
template <>
struct is_error_code_enum<storecache::cache::store_errc> : std::true_type {};
}  // namespace boost::system
