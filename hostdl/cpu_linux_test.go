//go:build linux

package hostdl

import (
	"bytes"
	"os"
	"strconv"
)

// ioCalls returns the read and write syscalls (read, readv, write,
// writev, ...) this process has made, from /proc/self/io; 0, 0 where it
// cannot be read.
func ioCalls() (reads, writes int64) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range bytes.Lines(data) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch string(k) {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}
