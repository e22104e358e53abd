package hostdl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// TestOldReceiverRefused: a request without Viacodec-Protocol (a receiver
// of protocol 1) or with another version is refused on every batch
// endpoint with 400 and KindProtocol, naming both versions, before
// anything else is looked at; the transaction is untouched.
func TestOldReceiverRefused(t *testing.T) {
	srv, _, ref, tx := oneBatch(t, 1<<20, ServerOptions{})
	for _, v := range []string{"", "1", "3"} {
		for _, path := range []string{"manifest", "items/0", "receipt"} {
			method := http.MethodGet
			if path == "receipt" {
				method = http.MethodPost
			}
			hdr := map[string]string{headerProtocol: v, "Authorization": bearer(ref), headerReceiver: "old", "Range": "bytes=0-1023", headerNonce: "00"}
			code, body, h := rawDo(t, method, batchURL(srv, ref, path), hdr)
			if code != http.StatusBadRequest || errKind(t, body) != "protocol" {
				t.Errorf("version %q, %s: %d %s", v, path, code, body)
			}
			want := "speaks download protocol " + v
			if v == "" {
				want = "speaks download protocol 1 (it sent no Viacodec-Protocol header)"
			}
			if !strings.Contains(string(body), want) || !strings.Contains(string(body), "this source speaks 2") {
				t.Errorf("version %q, %s: message %s does not name both versions", v, path, body)
			}
			if h.Get(headerProtocol) != protocolVersion {
				t.Errorf("version %q, %s: the answer does not say the source's version", v, path)
			}
		}
	}
	if _, rs := tx.Status(); len(rs) != 0 {
		t.Fatalf("refused requests recorded receivers: %+v", rs)
	}
}

// TestOldSourceRefused: a receiver refuses a source of protocol 1, whose
// answers carry no Viacodec-Protocol header, with KindProtocol naming both
// versions, and does not retry.
func TestOldSourceRefused(t *testing.T) {
	var asked sync.Map
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := asked.LoadOrStore(r.URL.Path, new(int))
		*n.(*int)++
		w.Header().Set("Content-Type", contentCBOR)
		w.Header().Set(headerNonce, strings.Repeat("0", 48))
		w.Write([]byte{0x83}) // never read: the version is checked first
	}))
	defer old.Close()
	table := newTable(t)
	msg, _ := publish(t, table, old.URL, newModel(1<<10, 1, 1).body(), core.PublishOptions{})
	c := newTestClient(t, ClientOptions{BackoffMin: time.Millisecond})
	_, err := decoder(t, c).Decode(msg)
	wantKind(t, err, core.KindProtocol)
	if !strings.Contains(err.Error(), "the source speaks download protocol 1") || !strings.Contains(err.Error(), "this receiver speaks 2") {
		t.Errorf("error does not name both versions: %v", err)
	}
	asked.Range(func(k, v any) bool {
		if n := *v.(*int); n != 1 {
			t.Errorf("%s asked %d times", k, n)
		}
		return true
	})
}

// TestTruncatedPieceResumes: a range whose body breaks off inside a piece
// is asked again from the start of that piece (the last good piece's end),
// not from its first byte nor from the byte where it broke, and the
// result is bit-exact.
func TestTruncatedPieceResumes(t *testing.T) {
	var (
		mu     sync.Mutex
		ranges []string
		cut    bool
	)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/items/") {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			first := !cut
			cut = true
			mu.Unlock()
			if first {
				// Two pieces and their checksums, then half of the third.
				w = &truncWriter{ResponseWriter: w, left: 2*(writePiece+crcSize) + writePiece/2}
			}
			h.ServeHTTP(w, r)
		})
	}
	table, srv := brokenServer(t, wrap)
	mdl := newModel(4<<20, 1, 3)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	c := newTestClient(t, ClientOptions{ChunkSize: 4 << 20, Concurrency: 1, BackoffMin: time.Millisecond})
	v, err := decoder(t, c).Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatal(err)
	}
	if want := []string{"bytes=0-4194303", "bytes=2097152-4194303"}; !slices.Equal(ranges, want) {
		t.Fatalf("ranges asked %q, want %q", ranges, want)
	}
}

// truncWriter writes left bytes of a response, then fails, so that the
// server ends the response short of its Content-Length.
type truncWriter struct {
	http.ResponseWriter
	left int
}

func (w *truncWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.ResponseWriter.Write(p[:w.left])
		w.left = 0
		return n, errors.New("truncated")
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}

func (w *truncWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestReadFramesOneReadPerPiece: a receiver asks for a piece's CRC-32C in
// the same read as the piece's last bytes, so that a body that has it all
// at hand (a socket with the bytes in) takes one read per piece, not the
// piece's and then a read for 4 bytes (which, through the HTTP client's
// buffer, also brings the next piece's start to be copied). Bytes and
// checks stay as they were: into memory (readFrames), into a file
// (readFramesTo), and with a corrupt last piece.
// Old: 16 reads for 8 pieces either way.
func TestReadFramesOneReadPerPiece(t *testing.T) {
	const pieces = 8
	data := make([]byte, pieces*writePiece-1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var body []byte
	for p := 0; p < len(data); p += writePiece {
		piece := data[p:min(p+writePiece, len(data))]
		body = append(body, piece...)
		body = binary.BigEndian.AppendUint32(body, core.Checksum(piece))
	}
	for _, to := range []string{"memory", "file"} {
		dst := make([]byte, len(data))
		read := func(r io.Reader) (int64, error) {
			if to == "memory" {
				return readFrames(r, dst, writePiece, nil)
			}
			return readFramesTo(r, bytesAt(dst), 0, int64(len(data)), writePiece)
		}
		cr := &countReader{r: bytes.NewReader(body)}
		n, err := read(bufio.NewReaderSize(cr, 4<<10)) // as net/http's client reads a connection
		if err != nil || n != int64(len(data)) || !bytes.Equal(dst, data) {
			t.Fatalf("%s: %d bytes, %v; equal %v", to, n, err, bytes.Equal(dst, data))
		}
		want := pieces // the file's buffer has room for the last CRC
		if to == "memory" {
			want++ // the last piece reads its CRC apart
		}
		if cr.reads != want {
			t.Errorf("%s: %d reads for %d pieces, want %d", to, cr.reads, pieces, want)
		}
		bad := slices.Clone(body)
		bad[len(bad)-crcSize-1] ^= 1
		n, err = read(bytes.NewReader(bad))
		if core.KindOf(err) != core.KindChecksum || n != (pieces-1)*writePiece {
			t.Errorf("%s: a corrupt last piece: %d bytes passed, %v", to, n, err)
		}
	}
}

// countReader counts the reads of r.
type countReader struct {
	r     io.Reader
	reads int
}

func (c *countReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// bytesAt is an io.WriterAt into a byte slice.
type bytesAt []byte

func (b bytesAt) WriteAt(p []byte, off int64) (int, error) { return copy(b[off:], p), nil }
