//go:build linux

package image

import dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

// ApplyChanges applies Dockerfile instructions (docker import -c and
// docker commit -c: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
// WORKDIR, ONBUILD, STOPSIGNAL, ...) to cfg, as import does.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	return applyChanges(cfg, changes)
}
