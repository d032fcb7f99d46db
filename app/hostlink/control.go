package hostlink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Status is the answer of GET /status.
type Status struct {
	State         string   `json:"state"`
	Engine        string   `json:"engine"` // "ready", "starting" or "failed"
	Versions      Versions `json:"versions"`
	UptimeSeconds float64  `json:"uptimeSeconds"`
	// The VM's memory, in bytes; 0 when the guest did not say.
	MemTotalBytes     uint64 `json:"memTotalBytes,omitempty"`
	MemAvailableBytes uint64 `json:"memAvailableBytes,omitempty"`
}

// VolumeEntry is one item of a volume folder's listing.
type VolumeEntry struct {
	Name     string    `json:"name"`
	Dir      bool      `json:"dir"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// Versions of the guest's software.
type Versions struct {
	Agent  string `json:"agent"`
	Kernel string `json:"kernel"`
}

// Engine states reported in Status.Engine.
const (
	EngineReady    = "ready"
	EngineStarting = "starting"
	EngineFailed   = "failed"
)

// Disk is the answer of GET /disk.
type Disk struct {
	DataRoot   string `json:"dataRoot"`
	TotalBytes uint64 `json:"totalBytes"`
	UsedBytes  uint64 `json:"usedBytes"`
	FreeBytes  uint64 `json:"freeBytes"`
}

// PortEvent is one line of GET /events with type "port".
type PortEvent struct {
	Type     string `json:"type"`   // "port"
	Action   string `json:"action"` // "published" or "withdrawn"
	Proto    string `json:"proto"`  // "tcp" or "udp"
	HostIP   string `json:"hostIP"`
	HostPort int    `json:"hostPort"`
	Target   string `json:"target"` // guest address:port
}

// Port event actions.
const (
	ActionPublished = "published"
	ActionWithdrawn = "withdrawn"
)

// Validate checks a port event read from the guest.
func (e PortEvent) Validate() error {
	if e.Type != "port" {
		return fmt.Errorf("port event: type %q is not port", e.Type)
	}
	if e.Action != ActionPublished && e.Action != ActionWithdrawn {
		return fmt.Errorf("port event: unknown action %q", e.Action)
	}
	if e.Proto != "tcp" && e.Proto != "udp" {
		return fmt.Errorf("port event: unknown proto %q", e.Proto)
	}
	if e.HostPort < 1 || e.HostPort > 65535 {
		return fmt.Errorf("port event: host port %d out of range", e.HostPort)
	}
	if e.HostIP != "" && net.ParseIP(e.HostIP) == nil {
		return fmt.Errorf("port event: host IP %q is not an IP", e.HostIP)
	}
	host, port, err := net.SplitHostPort(e.Target)
	if err != nil {
		return fmt.Errorf("port event: target %q: %w", e.Target, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" || net.ParseIP(host) == nil {
		return fmt.Errorf("port event: target %q is not ip:port", e.Target)
	}
	return nil
}

// Client talks to the guest control API (port 1024) over a Dialer.
type Client struct {
	http *http.Client
}

// NewClient returns a control API client dialing through d.
func NewClient(d Dialer) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.Dial(ctx, 1024)
		},
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: time.Second,
	}
	return &Client{http: &http.Client{Transport: tr}}
}

// the host name in control URLs; the dialer ignores it.
const controlBase = "http://berth-agent"

// maxBody bounds the answers read from the guest.
const maxBody = 1 << 20

// Status asks for the guest status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/status", nil, &s)
	return s, err
}

// Disk asks for the data disk usage.
func (c *Client) Disk(ctx context.Context) (Disk, error) {
	var d Disk
	err := c.do(ctx, http.MethodGet, "/disk", nil, &d)
	return d, err
}

// VolumeFiles lists the folder path (relative to the volume's root) of
// the engine's volume name.
func (c *Client) VolumeFiles(ctx context.Context, name, path string) ([]VolumeEntry, error) {
	var out []VolumeEntry
	err := c.do(ctx, http.MethodGet, "/volumes/"+url.PathEscape(name)+"/files?path="+url.QueryEscape(path), nil, &out)
	return out, err
}

// SetTime sets the guest clock.
func (c *Client) SetTime(ctx context.Context, t time.Time) error {
	return c.do(ctx, http.MethodPost, "/time", map[string]int64{"unixNano": t.UnixNano()}, nil)
}

// Shutdown asks the guest for an orderly poweroff.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", nil, nil)
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case []byte: // sent as it is (a daemon.json keeps its lines)
		body = bytes.NewReader(b)
	default:
		b2, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b2)
	}
	req, err := http.NewRequestWithContext(ctx, method, controlBase+path, body)
	if err != nil {
		return fmt.Errorf("control %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("control %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("control %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// StatusError is a non-2xx answer of the control API.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("control %s %s: status %d: %s", e.Method, e.Path, e.Code, e.Body)
}

// Message is the guest's message of the answer ({"message": ...}), else
// its body.
func (e *StatusError) Message() string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(e.Body), &m) == nil && m.Message != "" {
		return m.Message
	}
	return e.Body
}

// EngineConfig is the daemon.json the guest's engine runs with.
func (c *Client) EngineConfig(ctx context.Context) ([]byte, error) {
	var doc json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/engine/config", nil, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// ErrEngineConfigRefused wraps a daemon.json the guest refused (400):
// nothing changed. ErrEngineConfigFailed wraps one the engine did not start
// with (409): the guest put the previous one back.
var (
	ErrEngineConfigRefused = errors.New("the engine refused the daemon.json")
	ErrEngineConfigFailed  = errors.New("the engine did not start with the daemon.json")
)

// ApplyEngineConfig sends daemon.json to the guest, which restarts its
// engine with it when it differs from the running one (changed). It
// returns once the engine answers again.
func (c *Client) ApplyEngineConfig(ctx context.Context, doc []byte) (changed bool, err error) {
	var res struct {
		Changed bool `json:"changed"`
	}
	err = c.do(ctx, http.MethodPut, "/engine/config", doc, &res)
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusBadRequest:
			return false, fmt.Errorf("%w: %s", ErrEngineConfigRefused, se.Message())
		case http.StatusConflict:
			return true, fmt.Errorf("%w: %s", ErrEngineConfigFailed, se.Message())
		}
	}
	return res.Changed, err
}

// GrowDisk asks the guest to grow its data filesystem to its disk's size
// (after the host grew the disk) and returns the new usage.
func (c *Client) GrowDisk(ctx context.Context) (Disk, error) {
	var d Disk
	err := c.do(ctx, http.MethodPost, "/disk/grow", nil, &d)
	return d, err
}

// EventStream reads GET /events.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events opens the event stream; read it with Next and Close it when done.
// Cancelling ctx also ends it.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, controlBase+"/events", nil)
	if err != nil {
		return nil, fmt.Errorf("control GET /events: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control GET /events: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		return nil, &StatusError{Method: http.MethodGet, Path: "/events", Code: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
	}
	return NewEventStream(resp.Body), nil
}

// NewEventStream reads JSON-lines events from r.
func NewEventStream(r io.ReadCloser) *EventStream {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	return &EventStream{body: r, sc: sc}
}

// ErrUnknownEvent is returned by Next for a well-formed line whose type this
// host does not know; the stream stays usable.
var ErrUnknownEvent = errors.New("unknown event type")

// Next returns the next port event. Blank lines are skipped; an event of an
// unknown type yields an error wrapping ErrUnknownEvent and the stream may
// be read on. io.EOF ends the stream.
func (s *EventStream) Next() (PortEvent, error) {
	for s.sc.Scan() {
		line := bytes.TrimSpace(s.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		return ParseEvent(line)
	}
	if err := s.sc.Err(); err != nil {
		return PortEvent{}, fmt.Errorf("read events: %w", err)
	}
	return PortEvent{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// ParseEvent decodes and validates one event line.
func ParseEvent(line []byte) (PortEvent, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return PortEvent{}, fmt.Errorf("decode event: %w", err)
	}
	if head.Type != "port" {
		return PortEvent{}, fmt.Errorf("event %q: %w", head.Type, ErrUnknownEvent)
	}
	var e PortEvent
	if err := json.Unmarshal(line, &e); err != nil {
		return PortEvent{}, fmt.Errorf("decode port event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return PortEvent{}, err
	}
	return e, nil
}

// ErrEngineFailed is returned by WaitReady when the guest reports its
// engine failed.
var ErrEngineFailed = errors.New("guest engine failed")

// WaitReady polls GET /status until the engine is ready, the guest
// reports it failed (ErrEngineFailed), or ctx ends. Each attempt is bounded
// so that a guest still booting does not hold one request forever; report,
// when not nil, receives every status read (for progress display).
func (c *Client) WaitReady(ctx context.Context, report func(Status)) (Status, error) {
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(actx)
		cancel()
		if err == nil {
			if report != nil {
				report(st)
			}
			switch st.Engine {
			case EngineReady:
				return st, nil
			case EngineFailed:
				return st, ErrEngineFailed
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return Status{}, fmt.Errorf("wait for guest engine: %w (last: %w)", ctx.Err(), last)
			}
			return st, fmt.Errorf("wait for guest engine (%s): %w", st.Engine, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
