// The version of the build: CMake's project version and the git revision of the source
// (git describe --always --dirty at build time, "unknown" outside a git checkout). Defined in
// the generated version.cpp (common/version.cpp.in), the only file a new revision recompiles.
#pragma once

namespace backcheck::common {

extern const char* const kVersion;      // "0.1.0"
extern const char* const kGitRevision;  // "dd47477-dirty", or "unknown"

}  // namespace backcheck::common
