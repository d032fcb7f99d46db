//go:build linux

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// applyChanges applies the Dockerfile instructions of docker import -c
// (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER VOLUME WORKDIR STOPSIGNAL)
// to cfg. Variables are not substituted: there is no build context to
// take them from.
func applyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, c := range changes {
		if err := applyChange(cfg, c); err != nil {
			return &invalidError{err: err}
		}
	}
	return nil
}

func applyChange(cfg *dockerspec.DockerOCIImageConfig, line string) error {
	line = strings.ReplaceAll(line, "\\\r\n", "")
	line = strings.ReplaceAll(line, "\\\n", "")
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	var word, rest string
	if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
		word, rest = line[:i], line[i:]
	} else {
		word, rest = line, ""
	}
	rest = strings.TrimSpace(rest)
	instr := strings.ToUpper(word)
	switch instr {
	case "CMD", "ENTRYPOINT":
		args, err := commandArgs(instr, rest)
		if err != nil {
			return err
		}
		if instr == "CMD" {
			cfg.Cmd = args
		} else {
			cfg.Entrypoint = args
		}
	case "ENV":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		ports := strings.Fields(rest)
		if len(ports) == 0 {
			return errors.New("EXPOSE requires at least one argument")
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			expanded, err := parsePorts(p)
			if err != nil {
				return err
			}
			for _, e := range expanded {
				cfg.ExposedPorts[e] = struct{}{}
			}
		}
	case "USER", "WORKDIR", "STOPSIGNAL":
		if rest == "" {
			return fmt.Errorf("%s requires exactly one argument", instr)
		}
		switch instr {
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			if !path.IsAbs(rest) {
				base := cfg.WorkingDir
				if base == "" {
					base = "/"
				}
				rest = path.Join(base, rest)
			}
			cfg.WorkingDir = path.Clean(rest)
		case "STOPSIGNAL":
			if strings.ContainsAny(rest, " \t") {
				return fmt.Errorf("STOPSIGNAL requires exactly one argument")
			}
			cfg.StopSignal = rest
		}
	case "VOLUME":
		var vols []string
		if arr, ok := jsonArray(rest); ok {
			vols = arr
		} else {
			vols = strings.Fields(rest)
		}
		if len(vols) == 0 {
			return errors.New("VOLUME requires at least one argument")
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			v = strings.TrimSpace(v)
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "ONBUILD":
		if rest == "" {
			return errors.New("ONBUILD requires at least one argument")
		}
		next := strings.ToUpper(strings.Fields(rest)[0])
		switch next {
		case "ONBUILD":
			return errors.New("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", next)
		}
		cfg.OnBuild = append(cfg.OnBuild, rest)
	default:
		return fmt.Errorf("%s is not a valid change command", strings.ToLower(word))
	}
	return nil
}

// commandArgs parses the exec form (JSON array) or the shell form of CMD
// and ENTRYPOINT.
func commandArgs(instr, rest string) ([]string, error) {
	if arr, ok := jsonArray(rest); ok {
		return arr, nil
	}
	if rest == "" {
		if instr == "ENTRYPOINT" {
			return nil, nil
		}
		return nil, errors.New("CMD requires at least one argument")
	}
	return []string{"/bin/sh", "-c", rest}, nil
}

func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var arr []string
	if err := json.Unmarshal([]byte(s), &arr); err != nil {
		return nil, false
	}
	if arr == nil {
		arr = []string{}
	}
	return arr, true
}

// keyValues parses ENV/LABEL arguments: KEY=VALUE pairs (values may be
// quoted, with backslash escapes) or the legacy "KEY VALUE" form.
func keyValues(instr, rest string) ([][2]string, error) {
	if rest == "" {
		return nil, fmt.Errorf("%s requires at least one argument", instr)
	}
	words, err := splitWords(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", instr, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		// Legacy form: the first word is the key, the rest the value.
		rawKey, rawValue := rest, ""
		if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
			rawKey, rawValue = rest[:i], strings.TrimSpace(rest[i:])
		}
		key := words[0]
		if kw, err := splitWords(rawKey); err != nil || len(kw) != 1 || kw[0] == "" {
			return nil, fmt.Errorf("%s: invalid name %q", instr, rawKey)
		}
		if rawValue == "" {
			return nil, fmt.Errorf("%s names must be followed by a value: %q", instr, key)
		}
		value := rawValue
		if unq, err := splitWords(rawValue); err == nil && len(unq) == 1 {
			value = unq[0]
		}
		return [][2]string{{key, value}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not KEY=VALUE", instr, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on unquoted whitespace, removing quotes and handling
// backslash escapes (outside single quotes).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(runes) {
					i++
					cur.WriteRune(runes[i])
				} else {
					cur.WriteRune(r)
				}
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
			inWord = true
		case r == '\\':
			if i+1 < len(runes) {
				i++
				cur.WriteRune(runes[i])
			}
			inWord = true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// parsePorts expands "80", "80/tcp" or "8000-8002/udp" into port/proto
// keys.
func parsePorts(s string) ([]string, error) {
	portPart, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid proto %q in EXPOSE %s", proto, s)
	}
	lo, hi, isRange := strings.Cut(portPart, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q in EXPOSE", s)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q in EXPOSE", s)
		}
	}
	if end-start > 10000 {
		return nil, fmt.Errorf("port range %q in EXPOSE is too large", s)
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}
