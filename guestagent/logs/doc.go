// Package logs owns the json-file log driver: one JSON object per line with
// stream and time, size-based rotation, and readers that tail, filter by time
// and follow.
package logs
