// Package content owns the digest-addressed blob store: blobs are ingested to
// a temp file, verified against their digest, fsynced and renamed into place,
// so that a visible blob is always complete.
package content
