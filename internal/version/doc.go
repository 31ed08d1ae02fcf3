// Package version says which tbsim this is, from the build information the
// Go toolchain embeds (debug.ReadBuildInfo): the module version (set by
// `go install github.com/tbsim/tbsim/cmd/tbsim@v1.2.3`), the VCS revision
// (set by `go build` in a git checkout) and the Go version. Builds that have
// neither, such as a container built without .git, can set them with
// -ldflags "-X github.com/tbsim/tbsim/internal/version.version=v1.2.3
// -X github.com/tbsim/tbsim/internal/version.revision=abc123".
//
// It imports only the standard library; `tbsim version`, the JSON summary
// and the tbsim_build_info metric read it.
package version
