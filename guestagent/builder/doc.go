// Package builder owns Dockerfile builds behind the Engine API's POST
// /build (the classic builder protocol): it reads the build context (a tar
// stream or the tarball at a URL), applies .dockerignore, parses the
// Dockerfile with buildkit's parser and instructions packages, expands
// variables with Docker's rules, runs each step through a small Backend
// (the engine: RUN as a container, COPY/ADD as files extracted into one,
// the rest as config-only commits), and keeps a build cache in bbolt keyed
// by the parent image, the instruction, its arguments and environment, and
// the content hash of the files a COPY or ADD reads.
package builder
