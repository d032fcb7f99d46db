//go:build linux

package volume

import "fmt"

// The error kinds carry the behaviour methods guestagent/api maps to HTTP
// status codes.

type notFoundError struct{ error }

func (notFoundError) NotFound()       {}
func (e notFoundError) Unwrap() error { return e.error }

type invalidError struct{ error }

func (invalidError) InvalidParameter() {}
func (e invalidError) Unwrap() error   { return e.error }

type conflictError struct{ error }

func (conflictError) Conflict()       {}
func (e conflictError) Unwrap() error { return e.error }

// errNoSuchVolume is dockerd's 404 wording: "get NAME: no such volume".
func errNoSuchVolume(op, name string) error {
	return notFoundError{fmt.Errorf("%s %s: no such volume", op, name)}
}
