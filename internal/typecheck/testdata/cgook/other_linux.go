package cgook

// Not part of a darwin build: its error must not be reported for darwin.
var wrong int = "linux only"
