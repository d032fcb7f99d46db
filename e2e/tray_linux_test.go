//go:build linux

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// sessionBus is a D-Bus session bus of the test's own, on which the test
// plays the desktop panel: it owns org.kde.StatusNotifierWatcher, so the
// app's tray icon registers with it as it would with a real panel.
type sessionBus struct {
	addr       string
	conn       *dbus.Conn
	registered chan string // the bus names of the items that registered
}

func startSessionBus(t *testing.T) *sessionBus {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "bus")
	addr := "unix:path=" + sock
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var conn *dbus.Conn
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err = dbus.Connect(addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session bus %s never answered: %v", addr, err)
		}
	}
	t.Cleanup(func() { conn.Close() })
	b := &sessionBus{addr: addr, conn: conn, registered: make(chan string, 4)}
	if err := conn.Export(watcher{b}, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatalf("export the watcher: %v", err)
	}
	if reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.kde.StatusNotifierWatcher: reply %v, %v", reply, err)
	}
	return b
}

// watcher is the panel side of the StatusNotifierItem protocol.
type watcher struct{ b *sessionBus }

// RegisterStatusNotifierItem is what an item calls to be shown.
func (w watcher) RegisterStatusNotifierItem(sender dbus.Sender, path string) *dbus.Error {
	w.b.registered <- string(sender)
	return nil
}

// trayItem is one menu entry of the tray icon.
type trayItem struct {
	id      int32
	label   string
	enabled bool
}

// menuPath is where the item's menu is, as its Menu property says.
func (b *sessionBus) menuPath(t *testing.T, item string) dbus.ObjectPath {
	t.Helper()
	v, err := b.conn.Object(item, "/StatusNotifierItem").GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		t.Fatalf("the tray icon's Menu property: %v", err)
	}
	p, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		t.Fatalf("the tray icon's Menu property is %T, not an object path", v.Value())
	}
	return p
}

// trayMenu reads the tray icon's menu as a panel does (dbusmenu GetLayout).
func (b *sessionBus) trayMenu(t *testing.T, item string) []trayItem {
	t.Helper()
	var revision uint32
	var root []any
	call := b.conn.Object(item, b.menuPath(t, item)).Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
	if err := call.Store(&revision, &root); err != nil {
		t.Fatalf("the tray menu's layout: %v", err)
	}
	var items []trayItem
	var walk func(node []any)
	walk = func(node []any) {
		if len(node) != 3 {
			return
		}
		id, _ := node[0].(int32)
		props, _ := node[1].(map[string]dbus.Variant)
		if v, ok := props["label"]; ok {
			label, _ := v.Value().(string)
			enabled := true
			if e, ok := props["enabled"]; ok {
				enabled, _ = e.Value().(bool)
			}
			items = append(items, trayItem{id: id, label: label, enabled: enabled})
		}
		children, _ := node[2].([]dbus.Variant)
		for _, c := range children {
			if n, ok := c.Value().([]any); ok {
				walk(n)
			}
		}
	}
	walk(root)
	return items
}

func findItem(items []trayItem, prefix string) (trayItem, bool) {
	for _, it := range items {
		if strings.HasPrefix(it.label, prefix) {
			return it, true
		}
	}
	return trayItem{}, false
}

func describeMenu(items []trayItem) string {
	var s []string
	for _, it := range items {
		if it.label == "" {
			continue
		}
		mark := ""
		if !it.enabled {
			mark = " (disabled)"
		}
		s = append(s, it.label+mark)
	}
	return strings.Join(s, ", ")
}

// waitMenu waits until the menu holds an entry starting with state and the
// Start and Stop entries are enabled as that state wants.
func (b *sessionBus) waitMenu(t *testing.T, item, state string, startOn, stopOn bool, timeout time.Duration) []trayItem {
	t.Helper()
	var items []trayItem
	for deadline := time.Now().Add(timeout); ; time.Sleep(250 * time.Millisecond) {
		items = b.trayMenu(t, item)
		st, ok1 := findItem(items, state)
		start, ok2 := findItem(items, "Start")
		stop, ok3 := findItem(items, "Stop")
		if ok1 && ok2 && ok3 && !st.enabled && start.enabled == startOn && stop.enabled == stopOn {
			return items
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tray menu never showed %q with Start enabled=%v, Stop enabled=%v: %s", state, startOn, stopOn, describeMenu(items))
		}
	}
}

func (b *sessionBus) click(t *testing.T, item string, it trayItem) {
	t.Helper()
	call := b.conn.Object(item, b.menuPath(t, item)).Call("com.canonical.dbusmenu.Event", 0,
		it.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click %q in the tray menu: %v", it.label, call.Err)
	}
}

// trayTests: the app's tray icon registers with the panel, its menu shows
// the engine's state, and its quick actions stop and start the VM (seen by
// the docker CLI).
func (d *desktopEnv) trayTests(t *testing.T, x *display, bus *sessionBus, a *app) {
	var item string
	select {
	case item = <-bus.registered:
	case <-time.After(60 * time.Second):
		t.Fatalf("the tray icon never registered with the panel; the app's log:\n%s", a.log)
	}
	items := bus.waitMenu(t, item, "Berth is running", false, true, 60*time.Second)
	t.Logf("tray menu: %s", describeMenu(items))
	for _, want := range []string{"Open Berth", "Restart", "Quit Berth"} {
		if _, ok := findItem(items, want); !ok {
			t.Errorf("the tray menu has no %q: %s", want, describeMenu(items))
		}
	}

	stop, _ := findItem(items, "Stop")
	bus.click(t, item, stop)
	bus.waitMenu(t, item, "Berth is stopped", true, false, 2*time.Minute)
	if out, err := d.docker("version", "--format", "{{.Server.Version}}"); err == nil {
		t.Fatalf("Stop in the tray left the engine answering: %s", out)
	}

	began := time.Now()
	start, _ := findItem(bus.trayMenu(t, item), "Start")
	bus.click(t, item, start)
	bus.waitMenu(t, item, "Berth is running", false, true, 3*time.Minute)
	if out, err := d.docker("version", "--format", "{{.Server.Version}}"); err != nil {
		t.Fatalf("Start in the tray: the engine does not answer: %v\n%s", err, out)
	}
	t.Logf("tray: Stop stopped the VM; Start brought docker back in %v", time.Since(began).Round(100*time.Millisecond))
}
