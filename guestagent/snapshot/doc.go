// Package snapshot owns the overlay snapshotter: committed read-only layers
// addressed by chain ID, writable container layers, and the mounts (data, not
// effects) that assemble them into a rootfs.
package snapshot
