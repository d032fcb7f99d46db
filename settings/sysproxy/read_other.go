//go:build !linux && !darwin && !windows

package sysproxy

import (
	"context"
	"os"
)

// Read returns the environment's proxies (FromEnv): this OS has no
// proxy setting Berth knows of.
func Read(ctx context.Context) (Proxy, error) {
	return FromEnv(os.Getenv), nil
}
