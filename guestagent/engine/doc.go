// Package engine owns the engine's containers: create, start, stop, kill,
// restart with restart policies, remove, inspect, list with filters, wait,
// attach, logs, exec, top, rename, pause, resize, update, prune, events; the
// container metadata store that survives restarts; and the Docker-default OCI
// spec for each container. It implements the container, exec and system
// backends of guestagent/api.
package engine
