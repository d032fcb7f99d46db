// Package api owns the Docker Engine API server of the engine: HTTP routing,
// API version negotiation, request decoding into github.com/moby/moby/api
// wire types, connection hijacking for attach and exec, stdcopy framing, and
// the mapping of backend errors to dockerd's status codes and message shapes.
// It holds no container or image state: each router calls a small backend
// interface (backend.go) implemented elsewhere.
package api
