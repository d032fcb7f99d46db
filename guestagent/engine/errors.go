//go:build linux

package engine

import (
	"errors"
	"fmt"
)

// The error kinds below carry the behaviour methods guestagent/api maps to
// HTTP status codes; each wraps its cause so errors.Is/As still see it.

type errNotFound struct{ error }

func (errNotFound) NotFound()       {}
func (e errNotFound) Unwrap() error { return e.error }

type errInvalid struct{ error }

func (errInvalid) InvalidParameter() {}
func (e errInvalid) Unwrap() error   { return e.error }

type errConflict struct{ error }

func (errConflict) Conflict()       {}
func (e errConflict) Unwrap() error { return e.error }

type errNotModified struct{ error }

func (errNotModified) NotModified()    {}
func (e errNotModified) Unwrap() error { return e.error }

type errNotImplemented struct{ error }

func (errNotImplemented) NotImplemented() {}
func (e errNotImplemented) Unwrap() error { return e.error }

func notFound(format string, args ...any) error {
	return errNotFound{fmt.Errorf(format, args...)}
}

func invalid(format string, args ...any) error {
	return errInvalid{fmt.Errorf(format, args...)}
}

func conflict(format string, args ...any) error {
	return errConflict{fmt.Errorf(format, args...)}
}

func notModified(format string, args ...any) error {
	return errNotModified{fmt.Errorf(format, args...)}
}

// isNotFound reports whether err (or anything it wraps) says NotFound.
func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	return errors.As(err, &nf)
}

// errNoSuchContainer is dockerd's 404 for an unknown container reference.
func errNoSuchContainer(ref string) error {
	return notFound("No such container: %s", ref)
}

type errUnavailable struct{ error }

func (errUnavailable) Unavailable()    {}
func (e errUnavailable) Unwrap() error { return e.error }
