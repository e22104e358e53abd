//go:build linux

package hostdl

import (
	"net/http"
	"strconv"
	"testing"
)

// TestPieceOneWrite: a source writes each piece of a range together with
// its CRC-32C, one write syscall per piece and not the piece and then its
// 4 bytes, which wait in the response's buffer and go out alone ahead of
// the next piece (two per piece at least). The receiver here only reads,
// so the process's write syscalls (/proc/self/io) are the source's; a
// write the socket takes only in part adds one (seen: 0.4-0.8 per piece
// either way), hence the slack. The server's connection keeps the system's
// send buffer: the near one (sendbuf.go) takes a piece in several writes.
func TestPieceOneWrite(t *testing.T) {
	const pieces = 32
	fitSendBuffers = false // before the server starts, back after it stops
	t.Cleanup(func() { fitSendBuffers = true })
	srv, _, ref, _ := oneBatch(t, pieces*writePiece, ServerOptions{})
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "r", "Range": "bytes=0-" + strconv.Itoa(pieces*writePiece-1)}
	rawDo(t, http.MethodGet, batchURL(srv, ref, "manifest"), hdr) // a connection, open and warm
	_, before := ioCalls()
	if before == 0 {
		t.Skip("no /proc/self/io")
	}
	code, body, _ := rawDo(t, http.MethodGet, batchURL(srv, ref, "items/0"), hdr)
	_, after := ioCalls()
	writes := after - before
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
