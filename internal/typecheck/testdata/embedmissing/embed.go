// Package embedmissing embeds a folder that does not exist (like frontend/dist
// before the frontend is built): the go command's error is not a type error.
package embedmissing

import "embed"

//go:embed all:dist
var assets embed.FS

func Assets() embed.FS { return assets }
