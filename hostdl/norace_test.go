//go:build !race

package hostdl

const raceEnabled = false
