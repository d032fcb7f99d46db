package bad

/*
static int one(void) { return 1; }
*/
import "C"

import "fyne.io/systray"

func One() int {
	return int(C.one())
}

func Mistakes() {
	var n int = "not a number"
	_ = n
	systray.SetTitle(42)
	systray.NoSuchFunction()
}
