package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/settings"
)

// Limits bound the Resources fields.
type Limits struct {
	MaxCPUs      int `json:"maxCPUs"`
	MaxMemoryMiB int `json:"maxMemoryMiB"`
	// CurrentDiskGiB is the disk's size now: a smaller one erases it.
	CurrentDiskGiB int `json:"currentDiskGiB"`
}

// SettingsView is what the Settings screen starts from.
type SettingsView struct {
	Settings *settings.Document `json:"settings"`
	Defaults *settings.Document `json:"defaults"`
	Limits   Limits             `json:"limits"`
}

// Settings reads the stored settings (the defaults when there is no
// file; a file that no longer parses is kept aside, as the CLI does).
func (a *App) Settings() (SettingsView, error) {
	st := a.opts.Store
	d, _, err := st.Load()
	if err != nil {
		return SettingsView{}, err
	}
	return SettingsView{
		Settings: indentEngine(d),
		Defaults: indentEngine(settings.Defaults(st.Host)),
		Limits:   Limits{MaxCPUs: hostCPUs(), MaxMemoryMiB: settings.MaxMemoryMiB(st.Host), CurrentDiskGiB: d.Resources.DiskGiB},
	}, nil
}

// indentEngine lays daemon.json out two spaces an indent, one key a line,
// as the frontend's editor shows it, so the lines of its errors match.
func indentEngine(d *settings.Document) *settings.Document {
	d = d.Clone()
	var b bytes.Buffer
	if len(d.Engine) > 0 && json.Indent(&b, d.Engine, "", "  ") == nil {
		d.Engine = b.Bytes()
	}
	return d
}

// FieldError is one wrong setting for the frontend: the dotted key, the
// reason, and for daemon.json keys the line in the editor.
type FieldError struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Line   int    `json:"line,omitempty"`
}

// fieldErrors turns a settings error into FieldErrors; ok is false when
// err is not about fields.
func fieldErrors(err error) (out []FieldError, ok bool) {
	var list settings.FieldErrors
	if errors.As(err, &list) {
		for _, e := range list {
			out = append(out, FieldError{Key: e.Key, Reason: e.Reason, Line: e.Line})
		}
		return out, true
	}
	var one *settings.FieldError
	if errors.As(err, &one) {
		return []FieldError{{Key: one.Key, Reason: one.Reason, Line: one.Line}}, true
	}
	return nil, false
}

// ValidateSettings checks a document as `berth settings validate` does,
// with the daemon.json laid out as the editor shows it; no errors is an
// empty list.
func (a *App) ValidateSettings(d settings.Document) ([]FieldError, error) {
	err := settings.Validate(indentEngine(&d), a.opts.Store.Host)
	if err == nil {
		return []FieldError{}, nil
	}
	if fe, ok := fieldErrors(err); ok {
		return fe, nil
	}
	return []FieldError{{Reason: err.Error()}}, nil
}

// ApplyResult is what ApplySettings did.
type ApplyResult struct {
	Applied []string     `json:"applied"`
	Changed bool         `json:"changed"`
	Errors  []FieldError `json:"errors,omitempty"`
	Error   string       `json:"error,omitempty"`
	// NeedsReset asks for a confirmation: the change erases the disk.
	NeedsReset bool `json:"needsReset,omitempty"`
}

// ApplySettings changes the settings as `berth settings set` does
// (desktop.Commit): checked, applied to the running VM with "progress"
// events, and saved only once applied. A refusal is in the result, with
// the settings unchanged.
func (a *App) ApplySettings(d settings.Document, confirmReset bool) (ApplyResult, error) {
	a.op.Lock()
	defer a.op.Unlock()
	next := indentEngine(&d)
	if old, _, err := a.opts.Store.Load(); err == nil && sameSettings(old, next) {
		return ApplyResult{Applied: []string{}, Changed: false}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := desktop.Commit(ctx, a.opts.Store, a.opts.Layout, desktop.GeneralHost{Executable: a.opts.LoginCommand}, next, confirmReset, func(m string) { a.emit("progress", m) })
	switch {
	case errors.Is(err, settings.ErrResetRequired):
		return ApplyResult{NeedsReset: true, Error: err.Error()}, nil
	case err != nil:
		if fe, ok := fieldErrors(err); ok {
			return ApplyResult{Errors: fe, Error: "nothing was applied: fix the settings shown"}, nil
		}
		return ApplyResult{Error: err.Error()}, nil
	}
	res := ApplyResult{Changed: true, Applied: c.Done}
	if res.Applied == nil {
		res.Applied = []string{}
	}
	if c.Applied {
		res.Applied = append(res.Applied, "saved and applied")
	} else {
		res.Applied = append(res.Applied, "saved; Berth is not running, so it takes effect at the next start")
	}
	a.refreshStatus(ctx)
	return res, nil
}

// sameSettings compares two documents as saved.
func sameSettings(a, b *settings.Document) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	if err1 != nil || err2 != nil {
		return false
	}
	var cx, cy bytes.Buffer
	json.Compact(&cx, x)
	json.Compact(&cy, y)
	return bytes.Equal(cx.Bytes(), cy.Bytes())
}

// Plan is a troubleshoot action's list of what it removes.
type Plan struct {
	Action      string     `json:"action"`
	Items       []PlanItem `json:"items"`
	Description string     `json:"description"`
}

// PlanItem is one thing removed.
type PlanItem struct {
	Path  string `json:"path"`
	What  string `json:"what"`
	Bytes int64  `json:"bytes"`
}

// lifecycleActions are the troubleshoot actions, by their CLI command.
var lifecycleActions = map[string]func(desktop.Files) (desktop.Plan, error){
	"reset":     desktop.Files.ResetPlan,
	"purge":     desktop.Files.PurgePlan,
	"uninstall": desktop.Files.UninstallPlan,
}

// TroubleshootPlan lists exactly what reset, purge or uninstall would
// remove, for the confirmation.
func (a *App) TroubleshootPlan(action string) (Plan, error) {
	mk, ok := lifecycleActions[action]
	if !ok {
		return Plan{}, fmt.Errorf("no troubleshoot action %q (reset, purge or uninstall)", action)
	}
	p, err := mk(a.opts.Files)
	if err != nil {
		return Plan{}, err
	}
	out := Plan{Action: action, Items: []PlanItem{}, Description: p.Describe()}
	for _, it := range p.Items {
		out.Items = append(out.Items, PlanItem{Path: it.Path, What: it.What, Bytes: it.Bytes})
	}
	return out, nil
}

// RunTroubleshoot runs `berth <action> --force` (the user confirmed in
// the window), with its lines as "progress" events, and returns what it
// printed.
func (a *App) RunTroubleshoot(action string) (string, error) {
	if _, ok := lifecycleActions[action]; !ok {
		return "", fmt.Errorf("no troubleshoot action %q (reset, purge or uninstall)", action)
	}
	a.op.Lock()
	defer a.op.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var out strings.Builder
	err := a.opts.CLI.Run(ctx, func(l string) { out.WriteString(l + "\n"); a.emit("progress", l) }, action, "--force")
	a.refreshStatus(ctx)
	if err != nil {
		return out.String(), fmt.Errorf("berth %s: %w", action, err)
	}
	return out.String(), nil
}

// Diagnostics writes a diagnostics bundle (`berth diagnose`) and returns
// its path.
func (a *App) Diagnostics() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var path string
	err := a.opts.CLI.Run(ctx, func(l string) {
		if p, ok := strings.CutPrefix(l, "Diagnostics written to "); ok {
			path = strings.TrimSpace(p)
		}
	}, "diagnose")
	if err != nil {
		return "", fmt.Errorf("berth diagnose: %w", err)
	}
	if path == "" {
		return "", errors.New("berth diagnose did not say where it wrote the bundle")
	}
	return path, nil
}
