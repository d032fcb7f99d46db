// Package settings owns the user's settings document (settings.json): its
// schema and version, the defaults of each OS (as data, so the macOS and
// Windows defaults are tested on any host), field-level validation whose
// errors name the dotted key and the reason, dotted-key reads and writes
// for the CLI, migration of older documents, and the atomic store that
// keeps a file that no longer parses aside and falls back to the defaults.
// The Docker Engine section is the daemon.json document itself, checked by
// settings/daemonjson. Applying settings to a VM is app/desktop's part.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/berthdesktop/berth/settings/daemonjson"
)

// Version is the version of the document this package writes.
const Version = 1

// Document is one user's settings.
type Document struct {
	// Version is the schema version; older documents migrate forward.
	Version     int         `json:"version"`
	General     General     `json:"general"`
	Resources   Resources   `json:"resources"`
	FileSharing FileSharing `json:"fileSharing"`
	Proxies     Proxies     `json:"proxies"`
	// Engine is the daemon.json document, a JSON object, kept as written
	// (key order, "64M" sizes) so the engine reads what the user wrote.
	Engine json.RawMessage `json:"engine"`
}

// General holds the app's own behaviour. Berth sends no telemetry, so
// there is no switch for it.
type General struct {
	StartAtLogin bool `json:"startAtLogin"`
	// CheckForUpdates is off by default; nothing is fetched while it is.
	CheckForUpdates bool `json:"checkForUpdates"`
	// BackupVMDisk includes the VM disk in the OS's backups (macOS: when
	// off, the disk is excluded from Time Machine).
	BackupVMDisk bool `json:"backupVMDisk"`
	// UseKeychain stores registry credentials in the OS keychain (the
	// credential helper in ~/.docker/config.json).
	UseKeychain bool `json:"useKeychain"`
}

// Resources are the VM's.
type Resources struct {
	CPUs      int `json:"cpus"`
	MemoryMiB int `json:"memoryMiB"`
	SwapMiB   int `json:"swapMiB"`
	DiskGiB   int `json:"diskGiB"`
	// DiskPath is the folder holding the VM disk; "" is the default under
	// Berth's home folder.
	DiskPath string `json:"diskPath"`
	// VMSubnet is the VM's network (an IPv4 CIDR); "" is the
	// hypervisor's default.
	VMSubnet string `json:"vmSubnet"`
}

// FileSharing lists the host folders shared into the VM at the same path.
type FileSharing struct {
	Paths []string `json:"paths"`
}

// The proxy modes.
const (
	ProxyNone   = "none"
	ProxySystem = "system"
	ProxyManual = "manual"
)

// Proxies are used for pulls and builds and injected into containers.
type Proxies struct {
	// Mode is none, system (read from the OS) or manual (the fields
	// below). The manual fields are kept while another mode is chosen.
	Mode    string `json:"mode"`
	HTTP    string `json:"http"`
	HTTPS   string `json:"https"`
	NoProxy string `json:"noProxy"`
}

// FieldError is one setting that is wrong: its dotted key and why.
type FieldError struct {
	Key    string
	Reason string
	// Err, when set, is what callers can test for (ErrResetRequired).
	Err error
	// Line is the line of the engine's daemon.json a key of "engine" is
	// on (1-based), 0 when not known.
	Line int
}

func (e *FieldError) Unwrap() error { return e.Err }

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return e.Key + ": " + e.Reason
}

// FieldErrors are every wrong setting of a document, in key order.
type FieldErrors []*FieldError

func (l FieldErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l FieldErrors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l as an error, nil when empty.
func (l FieldErrors) err() error {
	if len(l) == 0 {
		return nil
	}
	sort.SliceStable(l, func(i, j int) bool { return l[i].Key < l[j].Key })
	return l
}

// sections are the document's top-level keys with their known keys.
var sections = map[string][]string{
	"general":     {"startAtLogin", "checkForUpdates", "backupVMDisk", "useKeychain"},
	"resources":   {"cpus", "memoryMiB", "swapMiB", "diskGiB", "diskPath", "vmSubnet"},
	"fileSharing": {"paths"},
	"proxies":     {"mode", "http", "https", "noProxy"},
}

// Parse decodes a settings document over defaults (a key the document
// leaves out keeps its default), migrating an older version forward. Keys
// it does not know and values of the wrong type are FieldErrors; it does
// not check values against a host (Validate does).
func Parse(data []byte, defaults *Document) (*Document, error) {
	if defaults == nil {
		defaults = &Document{}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("settings: %w", syntaxError(data, err))
	}
	if top == nil {
		return nil, errors.New("settings: the document must be a JSON object")
	}
	version := 0
	if raw, ok := top["version"]; ok {
		if err := json.Unmarshal(raw, &version); err != nil || version < 1 {
			return nil, FieldErrors{{Key: "version", Reason: fmt.Sprintf("expected a version number of 1 or more, got %s", bytes.TrimSpace(raw))}}
		}
	}
	switch {
	case version == 0:
		return migrateV0(data, defaults)
	case version > Version:
		return nil, FieldErrors{{Key: "version", Reason: fmt.Sprintf("the document is version %d, newer than this Berth reads (%d); update Berth", version, Version)}}
	}
	d := defaults.Clone()
	d.Version = version
	var errs FieldErrors
	for k, raw := range top {
		var err error
		switch k {
		case "version":
			continue
		case "general":
			err = decodeSection(k, raw, &d.General)
		case "resources":
			err = decodeSection(k, raw, &d.Resources)
		case "fileSharing":
			err = decodeSection(k, raw, &d.FileSharing)
		case "proxies":
			err = decodeSection(k, raw, &d.Proxies)
		case "engine":
			d.Engine, err = decodeEngine(raw)
		default:
			err = &FieldError{Key: k, Reason: "unknown key"}
		}
		var fe FieldErrors
		var one *FieldError
		switch {
		case errors.As(err, &fe):
			errs = append(errs, fe...)
		case errors.As(err, &one):
			errs = append(errs, one)
		case err != nil:
			errs = append(errs, &FieldError{Key: k, Reason: err.Error()})
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// decodeSection decodes one section, naming the first unknown key or
// wrongly typed value by its dotted key.
func decodeSection(name string, raw json.RawMessage, dst any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return &FieldError{Key: name, Reason: "expected an object, got " + kind(raw)}
	}
	var errs FieldErrors
	for k := range m {
		if !contains(sections[name], k) {
			errs = append(errs, &FieldError{Key: name + "." + k, Reason: fmt.Sprintf("unknown key (known: %s)", strings.Join(sections[name], ", "))})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &FieldError{Key: name + "." + te.Field, Reason: fmt.Sprintf("expected %s, got %s", goKind(te.Type.Kind().String()), te.Value)}
		}
		return &FieldError{Key: name, Reason: err.Error()}
	}
	return nil
}

// decodeEngine checks the daemon.json document and keeps it compact.
func decodeEngine(raw json.RawMessage) (json.RawMessage, error) {
	if _, err := daemonjson.Parse(raw); err != nil {
		return nil, engineErrors(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, &FieldError{Key: "engine", Reason: err.Error()}
	}
	return b.Bytes(), nil
}

// engineErrors turns daemonjson's errors into field errors under engine.
func engineErrors(err error) FieldErrors {
	var list daemonjson.ErrorList
	if !errors.As(err, &list) {
		return FieldErrors{{Key: "engine", Reason: err.Error()}}
	}
	var errs FieldErrors
	for _, e := range list {
		key := "engine"
		if e.Key != "" {
			key += "." + e.Key
		}
		errs = append(errs, &FieldError{Key: key, Reason: e.Err.Error(), Line: e.Line})
	}
	return errs
}

// EngineConfig parses the document's daemon.json.
func (d *Document) EngineConfig() (*daemonjson.Config, error) {
	c, err := daemonjson.Parse(d.Engine)
	if err != nil {
		return nil, engineErrors(err)
	}
	return c, nil
}

// Marshal writes the document indented, as it is stored.
func (d *Document) Marshal() ([]byte, error) {
	c := *d
	if len(bytes.TrimSpace(c.Engine)) == 0 {
		c.Engine = json.RawMessage("{}")
	}
	if c.FileSharing.Paths == nil {
		c.FileSharing.Paths = []string{}
	}
	out, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal settings: %w", err)
	}
	return append(out, '\n'), nil
}

// Clone returns a deep copy of d.
func (d *Document) Clone() *Document {
	c := *d
	c.FileSharing.Paths = append([]string(nil), d.FileSharing.Paths...)
	c.Engine = append(json.RawMessage(nil), d.Engine...)
	return &c
}

// syntaxError names the line of a JSON syntax error.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("line %d: %w", line, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("the document must be a JSON object, not %s", te.Value)
	}
	return err
}

func kind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// goKind names a Go kind the way the user sees it in JSON.
func goKind(k string) string {
	switch {
	case k == "bool":
		return "a boolean"
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "slice":
		return "an array"
	}
	return "an object"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
