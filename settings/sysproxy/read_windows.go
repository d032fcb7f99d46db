package sysproxy

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// internetSettings is the key, under HKEY_CURRENT_USER, of WinINet's
// proxy values (the "Proxy settings" of Windows' Settings app).
const internetSettings = `Software\Microsoft\Windows\CurrentVersion\Internet Settings`

// Read returns the current user's WinINet proxies (ParseWinINet). A value
// that is not there is unset. ctx is unused: reading the registry does not
// block.
func Read(ctx context.Context) (Proxy, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, internetSettings, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return Proxy{}, nil
	}
	if err != nil {
		return Proxy{}, fmt.Errorf(`sysproxy: open HKCU\%s: %w`, internetSettings, err)
	}
	defer k.Close()
	enable, _, err := k.GetIntegerValue("ProxyEnable")
	if err != nil && !errors.Is(err, registry.ErrNotExist) {
		return Proxy{}, fmt.Errorf("sysproxy: ProxyEnable: %w", err)
	}
	if enable == 0 {
		return Proxy{}, nil
	}
	var vals [2]string
	for i, name := range []string{"ProxyServer", "ProxyOverride"} {
		v, _, err := k.GetStringValue(name)
		if err != nil && !errors.Is(err, registry.ErrNotExist) {
			return Proxy{}, fmt.Errorf("sysproxy: %s: %w", name, err)
		}
		vals[i] = v
	}
	return ParseWinINet(1, vals[0], vals[1]), nil // enable is a DWORD, but any non-zero value enables
}
