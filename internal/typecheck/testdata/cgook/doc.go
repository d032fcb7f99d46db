// Package cgook uses cgo and a cgo dependency correctly on darwin.
package cgook
