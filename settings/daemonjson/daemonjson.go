// Package daemonjson owns the Docker Engine document: dockerd's daemon.json
// as Berth reads it. It parses the document, checks every key as dockerd
// does (unknown keys are refused with dockerd's message; wrong types, bad
// values and conflicts are errors naming the key and its line) and writes
// an accepted document back out. The engine (cmd/berth-agent) and the host
// (settings, cmd/berth) use this one parser, so it builds on every OS.
//
// Of the engine's packages it imports only guestagent/logs, whose option
// parser is pure and portable. The registry and network rules
// (insecure-registries, registry-mirrors, bip, default-address-pools) are
// restated here in plain Go: their packages pull the registry client and
// netlink with them, which the host has no use for. The engine's tests
// check that both sides agree on the same values.
package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	units "github.com/docker/go-units"
)

// Config is a parsed daemon.json. Only keys the document contained are
// set (Has); the others keep their zero values, and the engine applies its
// own defaults.
type Config struct {
	Debug          bool
	LogLevel       string
	LogDriver      string
	LogOpts        map[string]string
	DefaultUlimits map[string]*units.Ulimit
	Labels         []string
	Init           bool
	DefaultShmSize int64
	Hosts          []string
	DataRoot       string
	ExecRoot       string

	// Registries.
	InsecureRegistries     []string
	RegistryMirrors        []string
	Proxies                Proxies
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	RegistryCertsDir       string

	// The default bridge and the pools of user-defined networks.
	Bridge              string
	Bip                 string
	MTU                 int
	DefaultAddressPools []Pool
	HostGatewayIP       netip.Addr

	// Accepted for compatibility with existing daemon.json files; they do
	// not change the engine's behaviour (yet).
	Experimental  bool
	StorageDriver string

	// set records which keys the document contained.
	set map[string]bool
}

// Proxies is daemon.json's "proxies" object.
type Proxies struct {
	HTTPProxy  string `json:"http-proxy,omitempty"`
	HTTPSProxy string `json:"https-proxy,omitempty"`
	NoProxy    string `json:"no-proxy,omitempty"`
}

// Pool is one entry of default-address-pools: user-defined networks get
// subnets of Size bits carved out of Base.
type Pool struct {
	Base netip.Prefix
	Size int
}

// Has reports whether the document contained key.
func (c *Config) Has(key string) bool { return c.set[key] }

// Keys returns the keys the document contained, sorted.
func (c *Config) Keys() []string {
	keys := make([]string, 0, len(c.set))
	for k := range c.set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Known reports whether key is a daemon.json key Berth accepts.
func Known(key string) bool {
	_, ok := keys[key]
	return ok
}

// Error is one problem in a daemon.json document.
type Error struct {
	// Line is the 1-based line of the key (or of the syntax error); 0
	// when the problem has no place, such as an empty object's conflict.
	Line int
	// Key is the daemon.json key at fault; "" for the document itself.
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem Parse found, in document order. Parse returns
// one whenever it fails.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// member is one key of the document's top-level object.
type member struct {
	key  string
	line int
	raw  json.RawMessage
}

// Parse decodes and checks a daemon.json document. An empty document is
// an empty configuration. When the document has keys Berth does not know,
// that is the only error reported (as dockerd does); otherwise every bad
// key is reported. The error is always an ErrorList.
func Parse(data []byte) (*Config, error) {
	c := &Config{set: map[string]bool{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	members, err := readObject(data)
	if err != nil {
		return nil, ErrorList{err}
	}
	var unknown []string
	unknownLine := 0
	for _, m := range members {
		if !Known(m.key) {
			unknown = append(unknown, m.key)
			if unknownLine == 0 {
				unknownLine = m.line
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, ErrorList{{Line: unknownLine, Err: fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))}}
	}
	var errs ErrorList
	first := map[string]int{}
	for _, m := range members {
		if l, ok := first[m.key]; ok {
			errs = append(errs, &Error{Line: m.line, Key: m.key, Err: fmt.Errorf("%q is given twice (first on line %d)", m.key, l)})
			continue
		}
		first[m.key] = m.line
		if err := keys[m.key].decode(c, m.key, m.raw); err != nil {
			errs = append(errs, &Error{Line: m.line, Key: m.key, Err: err})
			continue
		}
		c.set[m.key] = true
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// readObject splits the document into its top-level members, each with
// the line its key is on.
func readObject(data []byte) ([]member, *Error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(data, dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &Error{Line: lineAt(data, dec.InputOffset()), Err: fmt.Errorf("invalid daemon configuration: must be a JSON object, not %s", tokenKind(tok))}
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(data, dec, err)
		}
		key, _ := tok.(string)
		line := lineAt(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data, dec, err)
		}
		members = append(members, member{key: key, line: line, raw: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Line: lineAt(data, dec.InputOffset()), Err: errors.New("invalid daemon configuration: trailing data after the JSON object")}
	}
	return members, nil
}

// syntaxError places a decoder error on its line.
func syntaxError(data []byte, dec *json.Decoder, err error) *Error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// Where the document stops, not the blank lines after it.
		off = int64(len(bytes.TrimRight(data, " \t\r\n")))
		err = errors.New("unexpected end of the document")
	}
	return &Error{Line: lineAt(data, off), Err: fmt.Errorf("invalid daemon configuration: %w", err)}
}

// lineAt is the 1-based line holding byte off of data.
func lineAt(data []byte, off int64) int {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	case float64, json.Number:
		return "a number"
	}
	return fmt.Sprint(tok)
}

// Marshal writes the keys c holds as a daemon.json document, indented,
// keys sorted. Parsing the result gives c back.
func (c *Config) Marshal() ([]byte, error) {
	doc := map[string]any{}
	for k := range c.set {
		doc[k] = keys[k].value(c)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal daemon configuration: %w", err)
	}
	return append(out, '\n'), nil
}
