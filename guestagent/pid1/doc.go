// Package pid1 owns PID 1 of the Berth VM (`berth-agent init`): the mounts,
// module loading, the switch from the initramfs to a tmpfs root, the
// virtio-serial port links, the data disk (made on first boot, grown online),
// the network, virtiofs shares, cgroup v2 delegation, the clock, zombie
// reaping, the engine's supervision, the guest end of the channel and the
// orderly shutdown.
package pid1
