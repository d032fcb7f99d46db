//go:build linux

package image

import (
	"fmt"

	"github.com/distribution/reference"
)

// notFoundError is dockerd's "No such image" (404).
type notFoundError struct{ ref string }

func (e *notFoundError) Error() string { return "No such image: " + e.ref }
func (e *notFoundError) NotFound()     {}

// noSuchImage builds the 404 for what the user typed, shown as dockerd
// shows it: a name gets its default tag ("busybox" -> "busybox:latest").
func noSuchImage(refOrID string) error {
	if ref, err := reference.ParseAnyReference(refOrID); err == nil {
		if named, ok := ref.(reference.Named); ok {
			return &notFoundError{ref: reference.FamiliarString(reference.TagNameOnly(named))}
		}
		return &notFoundError{ref: reference.FamiliarString(ref)}
	}
	return &notFoundError{ref: refOrID}
}

// conflictError is a 409.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Conflict()     {}

// invalidError is a 400 wrapping its cause.
type invalidError struct{ err error }

func (e *invalidError) Error() string     { return e.err.Error() }
func (e *invalidError) Unwrap() error     { return e.err }
func (e *invalidError) InvalidParameter() {}

func invalidf(format string, args ...any) error {
	return &invalidError{err: fmt.Errorf(format, args...)}
}

// shortID is the 12-hex-digit form of an ID.
func shortID(id string) string {
	if i := len("sha256:"); len(id) > i && id[:i] == "sha256:" {
		id = id[i:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
