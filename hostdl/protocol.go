package hostdl

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/viacodec/viacodec/core"
)

// Protocol names: paths under the base URL and header fields.
const (
	pathPrefix = "/v1/batches/"

	headerProtocol = "Viacodec-Protocol" // the download protocol's version, on every batch request and answer
	headerReceiver = "Viacodec-Receiver" // the receiver's id, on every batch request
	headerNonce    = "Viacodec-Nonce"    // manifest response; receipt request
	headerVia      = "Viacodec-Via"      // a relay's or holder's own id, on the ranges and receipts it forwards
	headerKind     = "Viacodec-Error"    // error responses: the core kind's name

	contentCBOR   = "application/cbor"
	contentJSON   = "application/json"
	contentPieces = "application/vnd.viacodec.pieces" // a range: each piece's bytes, then its CRC-32C

	// protocolVersion is the version of the download protocol this
	// package speaks (docs/download-protocol.md §4): 2 sends each piece's
	// checksum with its bytes; 1 (no header) had them in the manifest.
	protocolVersion = "2"

	maxErrorBody = 4 << 10 // bytes of an error body a client reads
	maxErrorSent = 512     // bytes of an error body a server sends
	maxLogText   = 256     // bytes of client-chosen text in one log attribute
)

// checkProtocol reports, as KindProtocol, a peer that does not speak this
// package's version of the protocol: got is the peer's Viacodec-Protocol
// header, peer what it is ("receiver" or "source") and self what this
// side is.
func checkProtocol(got, peer, self string) error {
	if got == protocolVersion {
		return nil
	}
	v := cut(got, 16)
	if got == "" {
		v = "1 (it sent no " + headerProtocol + " header)"
	}
	return core.NewError(core.KindProtocol, nil,
		"hostdl: the %s speaks download protocol %s, this %s speaks %s: upgrade the older one", peer, v, self, protocolVersion)
}

// readFrames reads the frames of a range's body (§5.2 of
// docs/download-protocol.md) into dst, whose length is the item bytes
// they carry, cut in pieces of bs bytes: each piece's bytes, then its
// CRC-32C. It checksums what each read brings as soon as it is in, while
// it is in cache (a piece is larger than a core's cache), and checks each
// piece's CRC. It returns how many bytes of dst passed, a whole number of
// pieces, and the error that stopped it: KindChecksum for a piece that
// does not match its CRC, otherwise the body's (io.ErrUnexpectedEOF for
// a body that ends early).
//
// A read of a piece's bytes asks for its CRC too, into the first bytes of
// the next piece's place (which that piece's reads overwrite), so that a
// piece whose bytes are in costs one read, not a second one for 4 bytes
// (through the HTTP client's buffer, that one also brings the next
// piece's start, to be copied). The last piece reads its CRC apart.
// sum, if not nil, is told each piece's CRC once it matched (the
// piece's offset in dst and the CRC).
func readFrames(body io.Reader, dst []byte, bs int64, sum func(p int64, crc uint32)) (int64, error) {
	var sent [crcSize]byte // the piece's CRC as sent
	var p int64
	for p < int64(len(dst)) {
		end := min(p+bs, int64(len(dst)))
		lim := end // where a read of the piece may reach
		if end+crcSize <= int64(len(dst)) {
			lim = end + crcSize
		}
		var crc uint32
		s := 0 // bytes of the CRC in sum
		for k := p; k < end || s < crcSize; {
			var n int
			var err error
			if k < end {
				n, err = body.Read(dst[k:lim])
				in := min(int64(n), end-k)
				crc = core.ChecksumUpdate(crc, dst[k:k+in])
				s = copy(sent[:], dst[k+in:k+int64(n)]) // the CRC's first bytes, if they came
				k += in
			} else {
				n, err = body.Read(sent[s:])
				s += n
			}
			if err != nil && (k < end || s < crcSize) {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return p, err
			}
		}
		if want := binary.BigEndian.Uint32(sent[:]); crc != want {
			return p, core.NewError(core.KindChecksum, nil, "hostdl: piece at byte %d of the range has crc32c %08x, its sender sent %08x (corrupted in transit, or the source changed a published array)", p, crc, want)
		}
		if sum != nil {
			sum(p, crc)
		}
		p = end
	}
	return p, nil
}

// readFramesTo is readFrames for n bytes that go to w from offset off
// on: each piece gathers with its CRC in a buffer of one frame (one read
// when they are in), is checked there, and is written with one WriteAt.
// An error of w's is a *core.Error of the kind w gave it (a full disk is
// KindLimit), which is never retried.
func readFramesTo(body io.Reader, w io.WriterAt, off, n, bs int64) (int64, error) {
	bp := pieceBuffers.Get().(*[]byte)
	defer pieceBuffers.Put(bp)
	if int64(cap(*bp)) < min(bs, n)+crcSize {
		*bp = make([]byte, min(bs, n)+crcSize)
	}
	buf := *bp
	var p int64
	for p < n {
		frame := buf[:min(bs, n-p)+crcSize]
		if _, err := io.ReadFull(body, frame); err != nil {
			return p, err
		}
		piece, sum := frame[:len(frame)-crcSize], frame[len(frame)-crcSize:]
		if c, want := core.Checksum(piece), binary.BigEndian.Uint32(sum); c != want {
			return p, core.NewError(core.KindChecksum, nil, "hostdl: piece at byte %d of the range has crc32c %08x, its sender sent %08x (corrupted in transit, or the source changed a published array)", p, c, want)
		}
		if _, err := w.WriteAt(piece, off+p); err != nil {
			return p, core.NewError(core.KindOf(err), err, "hostdl: write the piece at byte %d of the range", p)
		}
		p += int64(len(piece))
	}
	return p, nil
}

// pieceBuffers hold the pieces readFramesTo gathers: one per request
// under way, reused, so that a download into files makes no garbage in
// proportion to its size.
var pieceBuffers = sync.Pool{New: func() any { return new([]byte) }}

// errorBody is the JSON body of every error response: the core kind (its
// stable number and its name) and a message. It never holds item bytes.
type errorBody struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// statusOf returns the HTTP status that carries kind k.
func statusOf(k core.Kind) int {
	switch k {
	case core.KindUnknownRef:
		return http.StatusNotFound
	case core.KindExpired:
		return http.StatusGone
	case core.KindAuth, core.KindLimit: // a limit the table enforces: too many receivers
		return http.StatusForbidden
	case core.KindTimeout:
		return http.StatusGatewayTimeout
	case core.KindUnavailable, core.KindAborted:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// kindOfStatus is the kind a client assumes for a status whose body is not
// a hostdl error body, so the request never reached a hostdl handler. A
// 400 or 408 then comes from the HTTP layer, most often a connection whose
// header deadline ran out as the request arrived: it is worth a retry.
func kindOfStatus(code int) core.Kind {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return core.KindAuth
	case http.StatusNotFound:
		return core.KindUnknownRef
	case http.StatusGone:
		return core.KindExpired
	case http.StatusGatewayTimeout:
		return core.KindTimeout
	case http.StatusBadRequest, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return core.KindUnavailable
	case http.StatusRequestedRangeNotSatisfiable:
		return core.KindInvalid
	}
	if code >= 500 {
		return core.KindUnavailable
	}
	return core.KindProtocol
}

// kindByName maps the names of core kinds back to kinds.
var kindByName = func() map[string]core.Kind {
	m := map[string]core.Kind{}
	for k := core.KindInvalid; k != 0; k++ {
		name := k.String()
		if strings.HasPrefix(name, "kind(") {
			break
		}
		m[name] = k
	}
	return m
}()

// writeError answers with status and an error body for err, at most
// maxErrorSent bytes: a long message is cut.
func writeError(w http.ResponseWriter, status int, err error) {
	k := core.KindOf(err)
	eb := errorBody{Kind: k.String(), Code: int(k), Message: err.Error()}
	body, _ := json.Marshal(eb)
	for len(body) > maxErrorSent && eb.Message != "" {
		eb.Message = cut(eb.Message, len(eb.Message)-(len(body)-maxErrorSent)-len("…"))
		body, _ = json.Marshal(eb)
	}
	h := w.Header()
	h.Set("Content-Type", contentJSON)
	h.Set("Cache-Control", "no-store")
	h.Set(headerKind, k.String())
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="viacodec"`)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// cut returns s, or its first bytes and "…" so that the result is at most
// n bytes (never splitting a UTF-8 sequence).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	n = max(n-len(ell), 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ell
}

// readError turns a response with an error status into a *core.Error,
// keeping the kind the server named.
func readError(resp *http.Response, what string) *core.Error {
	k := kindOfStatus(resp.StatusCode)
	msg := http.StatusText(resp.StatusCode)
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb errorBody
	switch {
	case strings.HasPrefix(resp.Header.Get("Content-Type"), contentJSON) && json.Unmarshal(data, &eb) == nil:
		if named, ok := kindByName[eb.Kind]; ok && int(named) == eb.Code {
			k = named
		}
		if eb.Message != "" {
			msg = eb.Message
		}
	case strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") && utf8.Valid(data):
		// Not our error body (a proxy, or net/http itself): keep its text.
		msg = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	return core.NewError(k, errors.New(msg), "hostdl: %s: status %d", what, resp.StatusCode)
}
