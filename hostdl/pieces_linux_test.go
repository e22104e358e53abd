//go:build linux

package hostdl

import (
	"bytes"
	"net/http"
	"os"
	"strconv"
	"testing"
)

// TestPieceOneWrite: a source writes each piece of a range together with
// its CRC-32C, one write syscall per piece and not the piece and then its
// 4 bytes, which wait in the response's buffer and go out alone ahead of
// the next piece (two per piece at least). The receiver here only reads,
// so the process's write syscalls (/proc/self/io) are the source's; a
// write the socket takes only in part adds one (seen: 0.4-0.8 per piece
// either way), hence the slack.
func TestPieceOneWrite(t *testing.T) {
	const pieces = 32
	srv, _, ref, _ := oneBatch(t, pieces*writePiece, ServerOptions{})
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "r", "Range": "bytes=0-" + strconv.Itoa(pieces*writePiece-1)}
	rawDo(t, http.MethodGet, batchURL(srv, ref, "manifest"), hdr) // a connection, open and warm
	before := syscw(t)
	code, body, _ := rawDo(t, http.MethodGet, batchURL(srv, ref, "items/0"), hdr)
	writes := syscw(t) - before
	if code != http.StatusPartialContent || len(body) != pieces*(writePiece+crcSize) {
		t.Fatalf("status %d, %d bytes", code, len(body))
	}
	unframe(t, body)
	if per := float64(writes) / pieces; per >= 2.2 {
		t.Fatalf("%d write syscalls for %d pieces: %.2f per piece", writes, pieces, per)
	} else {
		t.Logf("%.2f write syscalls per piece", per)
	}
}

// syscw returns the write syscalls this process has made.
func syscw(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skip("no /proc/self/io:", err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no syscw in /proc/self/io")
	return 0
}
