// Package pkgdoc owns a repository-wide rule and its test: every Go package
// in the module has a doc comment saying what it owns. It has no code; its
// test walks the module's source tree.
package pkgdoc
