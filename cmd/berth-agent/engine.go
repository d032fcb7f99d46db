package main

import "errors"

// runEngine parses the engine's flags, wires the stores, runtime and API
// server, serves until SIGTERM/SIGINT, and shuts down cleanly.
func runEngine(args []string) error {
	return errors.New("engine: not implemented")
}
