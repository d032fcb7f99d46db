//go:build !cgo

package cgook

// Only a darwin build without cgo has this file: not the one checked.
var wrong int = "darwin without cgo"
