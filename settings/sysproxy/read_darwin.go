package sysproxy

import (
	"context"
	"fmt"
	"os/exec"
)

// Read returns the proxies of the current network service, as
// `scutil --proxy` prints them (ParseScutil).
func Read(ctx context.Context) (Proxy, error) {
	out, err := exec.CommandContext(ctx, "scutil", "--proxy").Output()
	if err != nil {
		return Proxy{}, fmt.Errorf("sysproxy: scutil --proxy: %w", err)
	}
	p, err := ParseScutil(out)
	if err != nil {
		return Proxy{}, fmt.Errorf("sysproxy: %w", err)
	}
	return p, nil
}
