package runtime

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	Name     string
	UID, GID int
	Home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	Name    string
	GID     int
	Members []string
}

// parsePasswd reads passwd(5) lines; malformed lines are skipped, as libc
// does.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] == "" {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			continue
		}
		e := passwdEntry{Name: f[0], UID: uid, GID: gid}
		if len(f) > 5 {
			e.Home = f[5]
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read passwd: %w", err)
	}
	return out, nil
}

// parseGroup reads group(5) lines; malformed lines are skipped.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] == "" {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil || gid < 0 {
			continue
		}
		e := groupEntry{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.Members = append(e.Members, m)
				}
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read group: %w", err)
	}
	return out, nil
}

// execUser is the identity a process runs with.
type execUser struct {
	UID, GID int
	Sgids    []int
	Home     string
}

// maxID is the largest uid or gid Linux accepts ((uid_t)-1 is reserved).
const maxID = 1<<32 - 2

func parseID(s string) (int, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxID {
		return 0, false
	}
	return int(n), true
}

// resolveUser works out the identity for Docker's user string spec
// ("name", "uid", "name:group", "uid:gid", ...) against the container's
// passwd and group entries, as runc does. With spec empty, uid and gid are
// used as given. Supplementary groups are the user's memberships in group
// (unless a group is named explicitly) plus extra.
func resolveUser(spec string, uid, gid int, passwd []passwdEntry, groups []groupEntry, extra []int) (execUser, error) {
	u := execUser{UID: uid, GID: gid, Home: "/"}
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	var pw *passwdEntry
	switch {
	case spec == "":
		for i := range passwd {
			if passwd[i].UID == uid {
				pw = &passwd[i]
				break
			}
		}
	case userArg == "":
		u.UID = 0
		for i := range passwd {
			if passwd[i].UID == 0 {
				pw = &passwd[i]
				break
			}
		}
	default:
		for i := range passwd {
			if passwd[i].Name == userArg {
				pw = &passwd[i]
				break
			}
		}
		if pw == nil {
			n, ok := parseID(userArg)
			if !ok {
				return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg)
			}
			u.UID = n
			for i := range passwd {
				if passwd[i].UID == n {
					pw = &passwd[i]
					break
				}
			}
		}
		if pw != nil {
			u.UID = pw.UID
		}
		if !hasGroup {
			u.GID = 0
		}
	}
	if pw != nil {
		if spec != "" && !hasGroup {
			u.GID = pw.GID
		}
		if pw.Home != "" {
			u.Home = pw.Home
		}
	}
	if hasGroup && groupArg != "" {
		found := false
		for _, g := range groups {
			if g.Name == groupArg {
				u.GID, found = g.GID, true
				break
			}
		}
		if !found {
			n, ok := parseID(groupArg)
			if !ok {
				return u, fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg)
			}
			u.GID = n
		}
	}
	seen := map[int]bool{}
	add := func(g int) {
		if !seen[g] {
			seen[g] = true
			u.Sgids = append(u.Sgids, g)
		}
	}
	add(u.GID)
	if pw != nil && !hasGroup {
		for _, g := range groups {
			for _, m := range g.Members {
				if m == pw.Name {
					add(g.GID)
				}
			}
		}
	}
	for _, g := range extra {
		add(g)
	}
	return u, nil
}
