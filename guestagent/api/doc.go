// Package api owns the Docker Engine API server of the engine: HTTP routing,
// API version negotiation, request decoding into github.com/moby/moby/api
// wire types, connection hijacking for attach and exec, stdcopy framing, and
// the mapping of backend errors to dockerd's status codes and message shapes.
// It holds no container or image state: each router calls a small backend
// interface (backend.go) implemented elsewhere.
//
// Wiring:
//
//	srv := api.New(api.Config{EngineVersion: v, System: eng, Containers: eng, Exec: eng, Images: images})
//	l, err := api.Listen("unix:///run/berth/docker.sock") // or tcp://host:port
//	go srv.Serve(l)
//	...
//	srv.Shutdown(ctx)
//
// Every route answers with and without a /vX.Y prefix. Requests name API
// versions from MinAPIVersion to APIVersion; others get dockerd's 400.
// Unknown routes (and known paths under another method) get dockerd's
// 404 {"message":"page not found"}. Parts of the API that later work will
// serve (pull, push, build, networks, volumes, cp, stats) answer 501 with
// a message that says so.
//
// Streams: wait sends its response head at once and the result when the
// condition is met; events and logs flush every message; attach and exec
// hijack the connection only when the backend calls GetStreams (so errors
// before that are ordinary JSON errors), answer 101 UPGRADED when the
// client asked to upgrade and a plain 200 otherwise, frame output with
// stdcopy headers unless the session has a TTY, give the backend stdin
// that reads EOF when the client half-closes, and close the connection
// when the backend returns.
//
// POST /containers/create's "platform" parameter reaches the backend
// through the request context: see RequestedPlatform.
package api
