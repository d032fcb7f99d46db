//go:build desktop || dev

// Command berth-desktop is Berth's desktop app: a Wails window over the
// frontend in frontend/dist, bound to app/ui. Wails builds it with the
// "desktop" tag (`make gui`); the browser tests build it with "dev".
package main

import (
	"embed"
	"fmt"
	"io/fs"
	"os"

	"github.com/wailsapp/wails/v2"

	"github.com/berthdesktop/berth/app/ui"
)

//go:embed all:frontend/dist
var assets embed.FS

func main() {
	dist, err := fs.Sub(assets, "frontend/dist")
	if err == nil {
		var app *ui.App
		if app, err = ui.DefaultApp(); err == nil {
			err = wails.Run(ui.WailsOptions(app, dist))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-desktop:", err)
		os.Exit(1)
	}
}
