package desktop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/hostshare"
)

// followFileEvents keeps the file-events stream to the guest open while
// ctx lasts: the guest names the paths its containers bind, the host
// watches them and sends their changes (hostshare.FileEvent), which the
// guest turns into inotify events in the VM.
func (s *Service) followFileEvents(ctx context.Context, vm machine.VM) {
	wait := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := s.fileEventsOnce(ctx, vm)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("file events stream ended", "err", err)
		if time.Since(began) > time.Minute {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

func (s *Service) fileEventsOnce(ctx context.Context, vm machine.VM) error {
	conn, err := vm.Dial(ctx, machine.PortFileEvents)
	if err != nil {
		return fmt.Errorf("dial the file events port: %w", err)
	}
	defer conn.Close()
	w, err := hostshare.NewWatcher(runtime.GOOS, s.log)
	if err != nil {
		return err
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go w.Run(ctx)
	go func() {
		enc := json.NewEncoder(conn)
		for e := range w.Events() {
			if err := enc.Encode(e); err != nil {
				cancel()
				return
			}
		}
	}()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		req, err := hostshare.ParseWatchRequest(sc.Bytes())
		if err != nil {
			s.log.Warn("file events: bad watch request from the guest", "err", err)
			continue
		}
		s.log.Debug("file events: watching", "paths", req.Watch)
		w.SetRoots(req.Watch)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the guest's watch requests: %w", err)
	}
	return fmt.Errorf("the guest closed the file events stream")
}
