package ui

import (
	"context"
	_ "embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"

	"fyne.io/systray"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	wr "github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/settings"
)

//go:embed tray.png
var trayIcon []byte

// wailsHost is Host over the Wails runtime of the window's context.
type wailsHost struct{ ctx context.Context }

func (h wailsHost) Emit(name string, data ...any) { wr.EventsEmit(h.ctx, name, data...) }

func (h wailsHost) PickFolder(title string) (string, error) {
	return wr.OpenDirectoryDialog(h.ctx, wr.OpenDialogOptions{Title: title, CanCreateDirectories: true})
}

func (h wailsHost) OpenURL(url string) { wr.BrowserOpenURL(h.ctx, url) }

// DefaultApp is the App over this user's Berth: the default layout and
// files, the settings store and the berth program beside the app.
func DefaultApp() (*App, error) {
	l, err := desktop.DefaultLayout()
	if err != nil {
		return nil, err
	}
	files, err := desktop.DefaultFiles()
	if err != nil {
		return nil, err
	}
	store, err := settings.NewStore()
	if err != nil {
		return nil, err
	}
	cli, err := FindCLI()
	if err != nil {
		return nil, err
	}
	return New(Options{Layout: l, Files: files, Store: store, CLI: ProgramCLI{Path: cli}, LoginCommand: cli}), nil
}

// WailsOptions are the Wails options of the desktop app: the window over the
// frontend's assets, App bound, the status loop and the tray started with
// the window. The window hides on close when the tray is there, as
// Docker Desktop does; Quit in the tray ends the app.
func WailsOptions(a *App, assets fs.FS) *options.App {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var stopTray func()
	return &options.App{
		Title:            "Berth",
		Width:            1180,
		Height:           760,
		MinWidth:         1024,
		MinHeight:        700,
		AssetServer:      &assetserver.Options{Assets: assets},
		BackgroundColour: &options.RGBA{R: 246, G: 247, B: 249, A: 255},
		Bind:             []any{a},
		OnStartup: func(ctx context.Context) {
			go a.run(ctx, wailsHost{ctx})
			if why := trayUnavailable(); why == "" {
				stopTray = a.startTray(ctx, log)
			} else {
				log.Info("no tray icon: " + why)
			}
		},
		OnShutdown: func(ctx context.Context) {
			if stopTray != nil {
				stopTray()
			}
		},
	}
}

// trayUnavailable says why no tray icon can be shown ("" when one can): on Linux it goes
// over the session bus (StatusNotifierItem), which a bare X server lacks.
// BERTH_NO_TRAY turns it off.
func trayUnavailable() string {
	switch {
	case os.Getenv("BERTH_NO_TRAY") != "":
		return "BERTH_NO_TRAY is set"
	case runtime.GOOS == "linux" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "":
		return "no desktop session bus (DBUS_SESSION_BUS_ADDRESS) to show it on"
	}
	return ""
}

// startTray shows the tray (menu bar) icon with the status and the quick
// actions: open the window, start, stop, restart, quit.
func (a *App) startTray(ctx context.Context, log *slog.Logger) (stop func()) {
	start, end := systray.RunWithExternalLoop(func() {
		systray.SetIcon(trayIcon)
		systray.SetTooltip("Berth")
		if runtime.GOOS == "darwin" {
			systray.SetTitle("")
		}
		state := systray.AddMenuItem("Berth is stopped", "")
		state.Disable()
		systray.AddSeparator()
		open := systray.AddMenuItem("Open Berth", "Show the window")
		startItem := systray.AddMenuItem("Start", "Start the VM")
		stopItem := systray.AddMenuItem("Stop", "Stop the VM")
		restart := systray.AddMenuItem("Restart", "Restart the VM")
		systray.AddSeparator()
		quit := systray.AddMenuItem("Quit Berth", "Close the app (the VM keeps running)")
		run := func(f func() error) {
			go func() {
				if err := f(); err != nil {
					log.Error("tray action", "err", err)
				}
			}()
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-open.ClickedCh:
					wr.WindowShow(ctx)
				case <-startItem.ClickedCh:
					run(a.Start)
				case <-stopItem.ClickedCh:
					run(a.Stop)
				case <-restart.ClickedCh:
					run(a.Restart)
				case <-quit.ClickedCh:
					wr.Quit(ctx)
				case <-a.statusChanged():
					st := a.current()
					state.SetTitle(fmt.Sprintf("Berth is %s", st.State))
					running := st.State == desktop.StateRunning
					busy := st.State == desktop.StateStarting || st.State == desktop.StateStopping
					enable(startItem, !running && !busy)
					enable(stopItem, running)
					enable(restart, running)
				}
			}
		}()
	}, func() {})
	start()
	return end
}

func enable(m *systray.MenuItem, on bool) {
	if on {
		m.Enable()
	} else {
		m.Disable()
	}
}
