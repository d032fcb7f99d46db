package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berthdesktop/berth/settings/daemonjson"
)

// generic is d as nested maps, numbers kept exact.
func generic(d *Document) (map[string]any, error) {
	data, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return m, nil
}

// Get returns the value at a dotted key (resources.cpus, fileSharing.paths,
// engine.registry-mirrors, a section such as proxies, or "" for the whole
// document) as plain JSON data.
func Get(d *Document, key string) (any, error) {
	m, err := generic(d)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return m, nil
	}
	var v any = m
	for _, part := range strings.Split(key, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, &FieldError{Key: key, Reason: "unknown key"}
		}
		if v, ok = obj[part]; !ok {
			if strings.HasPrefix(key, "engine.") && daemonjson.Known(strings.TrimPrefix(key, "engine.")) {
				return nil, &FieldError{Key: key, Reason: "not set in daemon.json"}
			}
			return nil, &FieldError{Key: key, Reason: "unknown key" + knownHint(key)}
		}
	}
	return v, nil
}

// Set returns a copy of d with the dotted key set to value, parsed by the
// key's type: true/false, a whole number, a string, a list (a JSON array or
// comma-separated), or JSON for an object or a daemon.json key not yet
// set. The result is parsed again (types, daemon.json's rules) but not
// validated against a host.
func Set(d *Document, key, value string) (*Document, error) {
	parts := strings.Split(key, ".")
	if len(parts) < 2 && key != "engine" {
		return nil, &FieldError{Key: key, Reason: "name a setting, such as resources.cpus" + knownHint(key)}
	}
	m, err := generic(d)
	if err != nil {
		return nil, err
	}
	parent := m
	for _, part := range parts[:len(parts)-1] {
		next, ok := parent[part].(map[string]any)
		if !ok {
			return nil, &FieldError{Key: key, Reason: "unknown key" + knownHint(key)}
		}
		parent = next
	}
	leaf := parts[len(parts)-1]
	old, exists := parent[leaf]
	if !exists {
		if len(parts) != 2 || parts[0] != "engine" || !daemonjson.Known(leaf) {
			if parts[0] == "engine" {
				return nil, &FieldError{Key: key, Reason: fmt.Sprintf("the following directives don't match any configuration option: %s", leaf)}
			}
			return nil, &FieldError{Key: key, Reason: "unknown key" + knownHint(key)}
		}
	}
	v, err := parseValue(old, exists, value)
	if err != nil {
		return nil, &FieldError{Key: key, Reason: err.Error()}
	}
	parent[leaf] = v
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return Parse(data, nil)
}

// parseValue reads s as the same kind of value as old.
func parseValue(old any, exists bool, s string) (any, error) {
	if !exists {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err == nil {
			return v, nil
		}
		return s, nil
	}
	switch old.(type) {
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case json.Number:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	case string:
		return s, nil
	case []any:
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			var v []any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				return nil, fmt.Errorf("%q is not a JSON array", s)
			}
			return v, nil
		}
		list := []any{}
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		return list, nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("expected JSON: %v", err)
	}
	return v, nil
}

// SettableKeys lists the dotted keys of the document's own sections.
func SettableKeys() []string {
	var keys []string
	for s, ks := range sections {
		for _, k := range ks {
			keys = append(keys, s+"."+k)
		}
	}
	sort.Strings(keys)
	return append(keys, "engine")
}

// knownHint suggests keys of the same section.
func knownHint(key string) string {
	section, _, _ := strings.Cut(key, ".")
	if ks, ok := sections[section]; ok {
		return fmt.Sprintf(" (known in %s: %s)", section, strings.Join(ks, ", "))
	}
	return " (sections: engine, fileSharing, general, proxies, resources)"
}
