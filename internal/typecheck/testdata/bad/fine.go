// Package bad has darwin code with real type errors.
package bad

func Fine() int { return 1 }
