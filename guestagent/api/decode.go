package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"

	"github.com/moby/moby/api/types/container"
)

// maxJSONBody bounds the JSON bodies this server decodes.
const maxJSONBody = 16 << 20

// checkJSONContentType accepts a JSON Content-Type, or none when there is
// no body, with dockerd's message otherwise.
func checkJSONContentType(contentType string, hasBody bool) error {
	if contentType == "" && !hasBody {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return invalidParameterf("unsupported Content-Type header (%s): must be 'application/json'", contentType)
	}
	return nil
}

// decodeJSON reads exactly one JSON value from body into out. An empty
// body is an error only when required.
func decodeJSON(body io.Reader, out any, required bool) error {
	if body == nil {
		if required {
			return invalidParameterf("invalid JSON: got EOF while reading request body")
		}
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(body, maxJSONBody))
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			if required {
				return invalidParameterf("invalid JSON: got EOF while reading request body")
			}
			return nil
		}
		return invalidParameterf("invalid JSON: %w", err)
	}
	if dec.More() {
		return invalidParameterf("unexpected content after JSON")
	}
	// Only whitespace may follow the value.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return invalidParameterf("unexpected content after JSON")
	}
	return nil
}

// decodeCreateRequest decodes the body of POST /containers/create.
func decodeCreateRequest(body io.Reader) (*container.CreateRequest, error) {
	var req container.CreateRequest
	if err := decodeJSON(body, &req, true); err != nil {
		return nil, err
	}
	if req.Config == nil {
		return nil, invalidParameterf("config cannot be empty in order to create a container")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if err := checkCreateRequest(&req); err != nil {
		return nil, err
	}
	return &req, nil
}

// checkCreateRequest rejects the request shapes dockerd refuses before it
// looks at any state.
func checkCreateRequest(req *container.CreateRequest) error {
	hc := req.HostConfig
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return errInvalidParameter(err)
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return invalidParameterf("can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// decodeExecCreate decodes the body of POST /containers/{name}/exec.
func decodeExecCreate(body io.Reader) (*container.ExecCreateRequest, error) {
	var req container.ExecCreateRequest
	if err := decodeJSON(body, &req, true); err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, invalidParameterf("No exec command specified")
	}
	return &req, nil
}

// decodeExecStart decodes the body of POST /exec/{id}/start.
func decodeExecStart(body io.Reader) (*container.ExecStartRequest, error) {
	var req container.ExecStartRequest
	if err := decodeJSON(body, &req, false); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeUpdate decodes the body of POST /containers/{name}/update.
func decodeUpdate(body io.Reader) (*container.UpdateConfig, error) {
	var req container.UpdateConfig
	if err := decodeJSON(body, &req, true); err != nil {
		return nil, err
	}
	if err := container.ValidateRestartPolicy(req.RestartPolicy); err != nil {
		return nil, errInvalidParameter(err)
	}
	return &req, nil
}
