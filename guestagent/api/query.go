package api

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parseFilters decodes the "filters" query parameter. Both encodings the
// docker CLI has used are accepted: {"key":{"value":true}} and the legacy
// {"key":["value"]}. Values come back sorted; an empty string is no filter.
func parseFilters(raw string) (Filters, error) {
	f := Filters{}
	if strings.TrimSpace(raw) == "" {
		return f, nil
	}
	var current map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &current); err == nil {
		for k, vals := range current {
			list := make([]string, 0, len(vals))
			for v := range vals {
				list = append(list, v)
			}
			slices.Sort(list)
			f[k] = list
		}
		return f, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
		return nil, invalidParameterf("invalid filters parameter %q: %w", raw, err)
	}
	for k, vals := range legacy {
		list := slices.Clone(vals)
		slices.Sort(list)
		f[k] = slices.Compact(list)
	}
	return f, nil
}

// boolValue reads a boolean query parameter the way dockerd does: absent,
// "", "0", "no", "false" and "none" are false, anything else is true.
func boolValue(q url.Values, key string) bool {
	switch strings.ToLower(strings.TrimSpace(q.Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// intValue reads an integer query parameter; absent means def.
func intValue(q url.Values, key string, def int) (int, error) {
	s := strings.TrimSpace(q.Get(key))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalidParameterf("invalid value for %q: %w", key, err)
	}
	return n, nil
}

// optionalInt reads an integer query parameter; absent means nil.
func optionalInt(q url.Values, key string) (*int, error) {
	if strings.TrimSpace(q.Get(key)) == "" {
		return nil, nil
	}
	n, err := intValue(q, key, 0)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// parseTimestamp reads a "since"/"until" value as the docker CLI sends it:
// seconds since the epoch with an optional fraction ("1700000000.5" or
// "1700000000.000000001"). The empty string is the zero time.
func parseTimestamp(value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	secStr, fracStr, hasFrac := strings.Cut(value, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}, invalidParameterf("invalid timestamp %q: %w", value, err)
	}
	var nsec int64
	if hasFrac {
		if fracStr == "" || len(fracStr) > 9 || strings.TrimLeft(fracStr, "0123456789") != "" {
			return time.Time{}, invalidParameterf("invalid timestamp %q: fraction must be 1 to 9 digits", value)
		}
		padded := fracStr + strings.Repeat("0", 9-len(fracStr))
		nsec, err = strconv.ParseInt(padded, 10, 64)
		if err != nil {
			return time.Time{}, invalidParameterf("invalid timestamp %q: %w", value, err)
		}
		if sec < 0 {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec), nil
}

// compareVersions compares dotted API versions numerically ("1.9" < "1.10").
// Missing or non-numeric components count as zero.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// validContainerName is dockerd's rule for container names.
var validContainerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkContainerName rejects names dockerd would reject, with its message.
func checkContainerName(name string) error {
	if !validContainerName.MatchString(name) {
		return invalidParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

var platformPart = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// parsePlatform reads a platform query value: os[/arch[/variant]], with
// the common architecture aliases normalized (x86_64 -> amd64, aarch64 ->
// arm64, armhf -> arm/v7). Only linux is accepted: this engine runs Linux
// containers.
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) > 3 {
		return ocispec.Platform{}, invalidParameterf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	for _, p := range parts {
		if !platformPart.MatchString(p) {
			return ocispec.Platform{}, invalidParameterf("invalid platform %q: expected os[/arch[/variant]]", s)
		}
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
		if p.Variant == "v8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	if p.OS != "linux" {
		return ocispec.Platform{}, invalidParameterf("invalid platform %q: operating system %q is not supported", s, p.OS)
	}
	return p, nil
}

// formatPlatform is the inverse of parsePlatform, for messages.
func formatPlatform(p ocispec.Platform) string {
	s := p.OS
	if p.Architecture != "" {
		s += "/" + p.Architecture
	}
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
