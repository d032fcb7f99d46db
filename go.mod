module github.com/berthdesktop/berth

go 1.26.8

require (
	github.com/moby/docker-image-spec v1.3.1
	github.com/moby/moby/api v1.56.1
	github.com/opencontainers/go-digest v1.0.0
	github.com/opencontainers/runtime-spec v1.3.0
)

require (
	github.com/docker/go-units v0.5.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
