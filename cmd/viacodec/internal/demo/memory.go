package demo

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
)

// peakRSS returns the process's peak resident memory in bytes: VmHWM of
// /proc/self/status, which every process of the demo reports for itself.
// It returns 0 where there is no such file.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := bytes.CutPrefix(s.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// resetPeakRSS starts peakRSS over from the memory resident now (Linux
// 4.0 and later), after returning the free heap to the system: the demo's
// server does so between its inline round trip and its rounds. Where it
// cannot, peakRSS keeps counting from the start.
func resetPeakRSS() {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
