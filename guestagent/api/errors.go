package api

import (
	"errors"
	"fmt"
	"net/http"
)

// statusFromError maps a backend or router error to the HTTP status code
// dockerd uses, by looking for behaviour methods anywhere in its chain.
func statusFromError(err error) int {
	if err == nil {
		return http.StatusInternalServerError
	}
	checks := []struct {
		status int
		match  func(error) bool
	}{
		{http.StatusNotFound, func(e error) bool { _, ok := e.(interface{ NotFound() }); return ok }},
		{http.StatusBadRequest, func(e error) bool { _, ok := e.(interface{ InvalidParameter() }); return ok }},
		{http.StatusConflict, func(e error) bool { _, ok := e.(interface{ Conflict() }); return ok }},
		{http.StatusNotModified, func(e error) bool { _, ok := e.(interface{ NotModified() }); return ok }},
		{http.StatusForbidden, func(e error) bool { _, ok := e.(interface{ Forbidden() }); return ok }},
		{http.StatusUnauthorized, func(e error) bool { _, ok := e.(interface{ Unauthorized() }); return ok }},
		{http.StatusNotImplemented, func(e error) bool { _, ok := e.(interface{ NotImplemented() }); return ok }},
		{http.StatusServiceUnavailable, func(e error) bool { _, ok := e.(interface{ Unavailable() }); return ok }},
	}
	// Walk the chain outermost first so that the closest classification
	// wins when wrapped errors disagree.
	var found int
	walkErrors(err, func(e error) bool {
		for _, c := range checks {
			if c.match(e) {
				found = c.status
				return true
			}
		}
		return false
	})
	if found != 0 {
		return found
	}
	return http.StatusInternalServerError
}

// walkErrors visits err and everything it wraps (Unwrap() error and
// Unwrap() []error), depth first, until visit returns true.
func walkErrors(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walkErrors(e, visit) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
	return false
}

// invalidParameterError is a client mistake detected by the router.
type invalidParameterError struct{ err error }

func (e invalidParameterError) Error() string     { return e.err.Error() }
func (e invalidParameterError) Unwrap() error     { return e.err }
func (e invalidParameterError) InvalidParameter() {}

// errInvalidParameter wraps err so that it maps to 400.
func errInvalidParameter(err error) error { return invalidParameterError{err} }

// invalidParameterf formats a 400 error.
func invalidParameterf(format string, args ...any) error {
	return invalidParameterError{fmt.Errorf(format, args...)}
}

// notImplementedError marks a part of the API this engine does not serve yet.
type notImplementedError struct{ msg string }

func (e notImplementedError) Error() string   { return e.msg }
func (e notImplementedError) NotImplemented() {}

// unavailableError marks a backend that is not wired into this server.
type unavailableError struct{ msg string }

func (e unavailableError) Error() string { return e.msg }
func (e unavailableError) Unavailable()  {}

// errPageNotFound is dockerd's answer to an unknown route.
var errPageNotFound = errors.New("page not found")

// notFoundError is a 404 the router itself decides.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }
func (e notFoundError) NotFound()     {}
