//go:build linux

// Command berth-agent is Berth's guest agent. As `init` it is PID 1 of the
// VM; as `engine` it is the container engine serving the Docker Engine API
// (it also runs natively on any Linux host as root, which is how most tests
// run). It re-executes itself as the container init of the runtime, and
// answers as the --init reaper when invoked under the name docker-init.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthdesktop/berth/guestagent/pid1"
	"github.com/berthdesktop/berth/guestagent/runtime"
)

func main() {
	if filepath.Base(os.Args[0]) == runtime.ReaperName {
		os.Exit(runtime.Reaper(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case runtime.InitCommand:
		err = runtime.Init()
	case "init":
		err = pid1.Main(os.Args[2:])
	case "engine":
		args, held, herr := pid1.HeldEngineArgs(os.Args[2:])
		switch {
		case herr != nil:
			err = herr
		case held && len(args) == 0:
			return // the held start was abandoned
		default:
			err = runEngine(args)
		}
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "berth-agent: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-agent %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: berth-agent COMMAND [flags]

Commands:
  engine   run the container engine (Docker Engine API)
           --data-root DIR --exec-root DIR -H unix:///PATH [--config-file daemon.json]
`)
}
