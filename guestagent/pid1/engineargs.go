package pid1

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// EngineArgsFDEnv names, in a held engine's environment, the descriptor it
// reads the rest of its arguments from (NUL-separated, to EOF) before it
// starts; EOF with none means the start was abandoned. pid1 starts the
// engine binary this way early in the boot, so that the binary's start-up
// overlaps the boot, and sends the arguments once it knows them.
const EngineArgsFDEnv = "BERTH_ENGINE_ARGS_FD"

// HeldEngineArgs is the engine's side of a held start: args completed with
// those read from the descriptor EngineArgsFDEnv names, and whether the
// process was started that way. A held start that receives nothing was
// abandoned: the engine should exit at once.
func HeldEngineArgs(args []string) (all []string, held bool, err error) {
	v := os.Getenv(EngineArgsFDEnv)
	if v == "" {
		return args, false, nil
	}
	os.Unsetenv(EngineArgsFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, true, fmt.Errorf("%s=%q: not a descriptor above 2", EngineArgsFDEnv, v)
	}
	f := os.NewFile(uintptr(fd), "engine arguments")
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, true, fmt.Errorf("read the engine's arguments from descriptor %d: %w", fd, err)
	}
	all = append([]string(nil), args...)
	if len(b) == 0 {
		return all, true, nil
	}
	return append(all, strings.Split(string(b), "\x00")...), true, nil
}
