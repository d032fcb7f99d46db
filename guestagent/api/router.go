package api

import (
	"net/http"
	"strings"
)

// handlerFunc serves one route. A returned error becomes dockerd's error
// response; a handler that has started its response must not return one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p params) error

// params are the path variables of a matched route.
type params map[string]string

// route is one method and path pattern. Pattern segments are literals,
// "{name}" (one segment) or "{name...}" (one or more segments, for image
// references that contain slashes; literal segments may follow it).
type route struct {
	method  string
	pattern []string
	handler handlerFunc
}

func newRoute(method, pattern string, h handlerFunc) route {
	return route{method: method, pattern: strings.Split(strings.Trim(pattern, "/"), "/"), handler: h}
}

// matchRoute returns the first route matching method and path, or nil.
// Like dockerd, a path served under another method is not found.
func matchRoute(routes []route, method, path string) (*route, params) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := range routes {
		rt := &routes[i]
		if rt.method != method {
			continue
		}
		if p, ok := matchSegments(rt.pattern, segs); ok {
			return rt, p
		}
	}
	return nil, nil
}

func matchSegments(pattern, segs []string) (params, bool) {
	p := params{}
	for i, pat := range pattern {
		name, isVar := strings.CutPrefix(pat, "{")
		if !isVar {
			if i >= len(segs) || segs[i] != pat {
				return nil, false
			}
			continue
		}
		name = strings.TrimSuffix(name, "}")
		if rest, greedy := strings.CutSuffix(name, "..."); greedy {
			// The literal tail of the pattern must match the tail of the path.
			tail := pattern[i+1:]
			n := len(segs) - i - len(tail)
			if n < 1 {
				return nil, false
			}
			for j, lit := range tail {
				if segs[i+n+j] != lit {
					return nil, false
				}
			}
			v := strings.Join(segs[i:i+n], "/")
			if v == "" || strings.Contains(v, "//") || strings.HasSuffix(v, "/") {
				return nil, false
			}
			p[rest] = v
			return p, true
		}
		if i >= len(segs) || segs[i] == "" {
			return nil, false
		}
		p[name] = segs[i]
	}
	if len(segs) != len(pattern) {
		return nil, false
	}
	return p, true
}

// buildRoutes lists every route. Order matters where patterns overlap:
// fixed paths come before the {name...} patterns of /images.
func (s *Server) buildRoutes() []route {
	get, post, del, head := http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodHead
	return []route{
		// system
		newRoute(get, "/_ping", s.ping),
		newRoute(head, "/_ping", s.ping),
		newRoute(get, "/version", s.version),
		newRoute(get, "/info", s.info),
		newRoute(get, "/events", s.events),

		// containers
		newRoute(post, "/containers/create", s.containerCreate),
		newRoute(get, "/containers/json", s.containerList),
		newRoute(post, "/containers/prune", s.containerPrune),
		newRoute(get, "/containers/{name}/json", s.containerInspect),
		newRoute(post, "/containers/{name}/start", s.containerStart),
		newRoute(post, "/containers/{name}/stop", s.containerStop),
		newRoute(post, "/containers/{name}/restart", s.containerRestart),
		newRoute(post, "/containers/{name}/kill", s.containerKill),
		newRoute(del, "/containers/{name}", s.containerRemove),
		newRoute(post, "/containers/{name}/wait", s.containerWait),
		newRoute(post, "/containers/{name}/attach", s.containerAttach),
		newRoute(get, "/containers/{name}/logs", s.containerLogs),
		newRoute(get, "/containers/{name}/top", s.containerTop),
		newRoute(post, "/containers/{name}/rename", s.containerRename),
		newRoute(post, "/containers/{name}/pause", s.containerPause),
		newRoute(post, "/containers/{name}/unpause", s.containerUnpause),
		newRoute(post, "/containers/{name}/resize", s.containerResize),
		newRoute(post, "/containers/{name}/update", s.containerUpdate),
		newRoute(post, "/commit", s.containerCommit),

		// exec
		newRoute(post, "/containers/{name}/exec", s.execCreate),
		newRoute(post, "/exec/{id}/start", s.execStart),
		newRoute(get, "/exec/{id}/json", s.execInspect),
		newRoute(post, "/exec/{id}/resize", s.execResize),

		// images
		newRoute(get, "/images/json", s.imageList),
		newRoute(post, "/images/load", s.imageLoad),
		newRoute(post, "/images/create", s.imageCreate),
		newRoute(get, "/images/search", notImplemented("searching registries is not supported yet")),
		newRoute(get, "/images/get", s.imageSave),
		newRoute(post, "/images/prune", s.imagePrune),
		newRoute(get, "/images/{name...}/json", s.imageInspect),
		newRoute(get, "/images/{name...}/history", s.imageHistory),
		newRoute(post, "/images/{name...}/tag", s.imageTag),
		newRoute(post, "/images/{name...}/push", s.imagePush),
		newRoute(get, "/images/{name...}/get", s.imageSave),
		newRoute(del, "/images/{name...}", s.imageDelete),

		// Parts of the API that later work will serve. They answer 501
		// with a message saying so rather than dockerd's "page not found",
		// so that the CLI prints something a user can act on.
		newRoute(post, "/build", s.build),
		newRoute(post, "/build/prune", s.buildPrune),
		newRoute(post, "/auth", s.auth),
		newRoute(get, "/distribution/{name...}/json", s.distributionInspect),
		newRoute(get, "/system/df", s.systemDF),
		newRoute(get, "/containers/{name}/stats", notImplemented("container statistics are not supported yet")),
		newRoute(get, "/containers/{name}/changes", s.containerChanges),
		newRoute(get, "/containers/{name}/export", s.containerExport),
		newRoute(get, "/containers/{name}/archive", s.containerArchiveGet),
		newRoute(head, "/containers/{name}/archive", s.containerArchiveHead),
		newRoute(http.MethodPut, "/containers/{name}/archive", s.containerArchivePut),
		newRoute(get, "/networks", s.networkList),
		newRoute(post, "/networks/create", s.networkCreate),
		newRoute(post, "/networks/prune", s.networkPrune),
		newRoute(get, "/networks/{id}", s.networkInspect),
		newRoute(del, "/networks/{id}", s.networkRemove),
		newRoute(post, "/networks/{id}/connect", s.networkConnect),
		newRoute(post, "/networks/{id}/disconnect", s.networkDisconnect),
		newRoute(get, "/volumes", s.volumeList),
		newRoute(post, "/volumes/create", s.volumeCreate),
		newRoute(post, "/volumes/prune", s.volumePrune),
		newRoute(get, "/volumes/{name}", s.volumeInspect),
		newRoute(http.MethodPut, "/volumes/{name}", notImplemented("updating volumes applies to cluster volumes only, which are not supported")),
		newRoute(del, "/volumes/{name}", s.volumeRemove),
	}
}

// notImplemented answers a route with 501 and msg.
func notImplemented(msg string) handlerFunc {
	return func(http.ResponseWriter, *http.Request, params) error {
		return notImplementedError{msg: msg}
	}
}
