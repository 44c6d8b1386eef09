// The running binary's version and commit: for `storecache --version` and the build-info metric.
// The values live in one generated source file (build_info.cpp.in), not in a compile definition,
// so a new commit recompiles that file alone and every other object stays a ccache hit.
#pragma once

namespace storecache::account {

extern const char* const build_version;
extern const char* const build_commit;

}  // namespace storecache::account
