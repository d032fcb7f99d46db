package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// execSession is an interactive exec with a TTY: the hijacked connection
// of POST /exec/{id}/start.
type execSession struct {
	id   string // the engine's exec id
	conn net.Conn
	once sync.Once
}

func (s *execSession) close() { s.once.Do(func() { s.conn.Close() }) }

// ExecEnd is the "exec-end:<id>" event.
type ExecEnd struct {
	ExitCode int    `json:"exitCode"`
	Error    string `json:"error,omitempty"`
}

// ExecStart runs cmd in the container with a TTY of cols x rows, as
// `docker exec -it` does, and returns the session's id: the terminal's
// output comes as "exec:<id>" events (text), the end as "exec-end:<id>".
func (a *App) ExecStart(container string, cmd []string, cols, rows int) (string, error) {
	if len(cmd) == 0 {
		return "", fmt.Errorf("exec in %s: no command", container)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create, _ := json.Marshal(map[string]any{
		"AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": true,
		"Cmd": cmd, "ConsoleSize": []int{rows, cols},
	})
	r, err := a.Docker(http.MethodPost, "/containers/"+url.PathEscape(container)+"/exec", string(create))
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusCreated {
		return "", fmt.Errorf("exec in %s: %s", container, engineMessage([]byte(r.Body)))
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal([]byte(r.Body), &created); err != nil || created.ID == "" {
		return "", fmt.Errorf("exec in %s: the engine's answer has no id: %s", container, r.Body)
	}
	conn, br, err := a.docker.hijack(ctx, "/exec/"+created.ID+"/start", `{"Detach":false,"Tty":true}`)
	if err != nil {
		return "", fmt.Errorf("exec in %s: %w", container, err)
	}
	s := &execSession{id: created.ID, conn: conn}
	id := a.nextID.next("x")
	a.execs.Store(id, s)
	go func() {
		b := newBatcher(func(c StreamChunk) { a.emit("exec:"+id, c.Data) })
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				b.add("tty", buf[:n])
				// A terminal wants its echo now: flush when nothing more is
				// waiting.
				if br.Buffered() == 0 {
					b.flush(false)
				}
			}
			if err != nil {
				break
			}
		}
		b.flush(true)
		s.close()
		a.execs.Delete(id)
		end := ExecEnd{ExitCode: -1}
		ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The exit code is set once the process is reaped: ask a few times.
		for i := 0; i < 20; i++ {
			resp, err := a.docker.request(ictx, http.MethodGet, "/exec/"+created.ID+"/json", "")
			if err != nil {
				end.Error = err.Error()
				break
			}
			var st struct {
				Running  bool
				ExitCode int
			}
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if !st.Running {
				end.ExitCode = st.ExitCode
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		a.emit("exec-end:"+id, end)
	}()
	return id, nil
}

func (a *App) session(id string) (*execSession, error) {
	v, ok := a.execs.Load(id)
	if !ok {
		return nil, fmt.Errorf("no exec session %s (it ended)", id)
	}
	return v.(*execSession), nil
}

// ExecInput sends keystrokes to the session's terminal.
func (a *App) ExecInput(id, data string) error {
	s, err := a.session(id)
	if err != nil {
		return err
	}
	_, err = io.WriteString(s.conn, data)
	return err
}

// ExecResize sets the session's terminal size.
func (a *App) ExecResize(id string, cols, rows int) error {
	s, err := a.session(id)
	if err != nil {
		return err
	}
	r, err := a.Docker(http.MethodPost, fmt.Sprintf("/exec/%s/resize?h=%d&w=%d", s.id, rows, cols), "")
	if err != nil {
		return err
	}
	if r.Status >= 400 {
		return fmt.Errorf("resize: %s", engineMessage([]byte(r.Body)))
	}
	return nil
}

// ExecClose ends the session (the shell sees its terminal hang up).
func (a *App) ExecClose(id string) {
	if v, ok := a.execs.LoadAndDelete(id); ok {
		v.(*execSession).close()
	}
}

// hijack posts body to path asking for the connection (Upgrade: tcp, as
// the docker CLI does) and returns it with its reader once the engine
// switched protocols.
func (c *dockerClient) hijack(ctx context.Context, path, body string) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		return nil, nil, fmt.Errorf("the engine does not answer on %s (is Berth running?): %w", c.sock, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		conn.Close()
		return nil, nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(engineMessage(b)))
	}
	conn.SetDeadline(time.Time{})
	return conn, br, nil
}
