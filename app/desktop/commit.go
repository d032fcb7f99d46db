package desktop

import (
	"context"
	"errors"

	"github.com/berthdesktop/berth/settings"
)

// Committed is what Commit did with a settings document.
type Committed struct {
	// Applied says the running service took the change (Done lists what
	// it did); false means Berth is stopped and the change waits for the
	// next start.
	Applied bool
	Done    []string
}

// NotSavedError is a Commit error after the document was found valid:
// the machine or the running service refused it, nothing was saved and
// Berth runs with the settings it had.
type NotSavedError struct{ Err error }

func (e *NotSavedError) Error() string { return e.Err.Error() }
func (e *NotSavedError) Unwrap() error { return e.Err }

// Commit is how every front end changes the settings: next is validated
// for the store's host, checked against the stored document (a smaller
// disk needs confirmReset), its General settings act on this machine, the
// running service applies it (ControlClient.Apply, progress reported), and
// only then is it saved. A failure undoes the General part and saves
// nothing. Validation errors are settings.FieldErrors, naming each key.
func Commit(ctx context.Context, store *settings.Store, l Layout, gh GeneralHost, next *settings.Document, confirmReset bool, progress func(string)) (Committed, error) {
	if err := settings.Validate(next, store.Host); err != nil {
		return Committed{}, err
	}
	old, _, lerr := store.Load()
	if lerr == nil {
		if err := settings.CheckChange(old, next, confirmReset); err != nil {
			return Committed{}, err
		}
	}
	data, err := next.Marshal()
	if err != nil {
		return Committed{}, err
	}
	if err := ApplyGeneral(gh, old, next, l.DiskPath()); err != nil {
		ApplyGeneral(gh, next, old, l.DiskPath())
		return Committed{}, &NotSavedError{err}
	}
	var c Committed
	if _, alive := DaemonPID(l); alive {
		ctl := NewControlClient(l)
		defer ctl.Close()
		res, err := ctl.Apply(ctx, data, progress)
		switch {
		case errors.Is(err, ErrNotRunning):
		case err != nil:
			ApplyGeneral(gh, next, old, l.DiskPath())
			return Committed{}, &NotSavedError{err}
		default:
			c.Applied, c.Done = true, res.Done
		}
	}
	if err := store.Save(next, confirmReset); err != nil {
		return c, err
	}
	return c, nil
}
