//go:build !unix

package tbemu

// fdLimit is unknown here: no connection limit by default.
func fdLimit() int { return 0 }
