//go:build !linux

package qemu

import "github.com/berthdesktop/berth/app/machine"

// probeHost: without KVM, vhost-vsock or O_DIRECT probes on this OS the VM
// runs under TCG with the virtio-serial channel.
func probeHost(cfg machine.Config) hostEnv { return hostEnv{} }
