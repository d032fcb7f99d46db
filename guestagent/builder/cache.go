//go:build linux

package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var cacheBucket = []byte("steps")

// cache maps a step's key to the image the step made. It survives engine
// restarts; a hit whose image is gone counts as a miss.
type cache struct {
	db *bolt.DB
}

func openCache(path string) (*cache, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open build cache %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(cacheBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open build cache %s: %w", path, err)
	}
	return &cache{db: db}, nil
}

func (c *cache) close() error { return c.db.Close() }

// stepKey is the cache key of a step: its parent image, the instruction as
// expanded, the build arguments and environment it sees, and the content
// hash of the files it reads (COPY/ADD; empty otherwise).
func stepKey(parent, instruction string, env []string, contentHash string) string {
	h := sha256.New()
	write := func(s string) {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	write(parent)
	write(instruction)
	fmt.Fprintf(h, "%d\n", len(env))
	for _, e := range env {
		write(e)
	}
	write(contentHash)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cache) get(key string) (string, bool) {
	var v string
	_ = c.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(cacheBucket).Get([]byte(key)); b != nil {
			v = string(b)
		}
		return nil
	})
	return v, v != ""
}

func (c *cache) put(key, imageID string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cacheBucket).Put([]byte(key), []byte(imageID))
	})
}

func (c *cache) delete(key string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cacheBucket).Delete([]byte(key))
	})
}

// prune empties the cache and returns the images its entries named.
func (c *cache) prune() ([]string, error) {
	var ids []string
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(cacheBucket)
		seen := map[string]bool{}
		if err := b.ForEach(func(k, v []byte) error {
			if !seen[string(v)] {
				seen[string(v)] = true
				ids = append(ids, string(v))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(cacheBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucket(cacheBucket)
		return err
	})
	return ids, err
}
