package cgook

/*
#include <stdlib.h>

static int twice(int x) { return 2 * x; }
*/
import "C"

import (
	"unsafe"

	"fyne.io/systray"
)

// Twice calls C through cgo; the fake "C" package accepts it unresolved.
func Twice(n int) int {
	s := C.CString("berth")
	defer C.free(unsafe.Pointer(s))
	var x C.int = C.int(n)
	return int(C.twice(x))
}

// Tray uses a dependency that is itself a cgo package on darwin.
func Tray(icon []byte) {
	systray.SetTitle("Berth")
	systray.SetTemplateIcon(icon, icon)
	item := systray.AddMenuItem("Quit", "Quit Berth")
	go func() {
		<-item.ClickedCh
		systray.Quit()
	}()
}
