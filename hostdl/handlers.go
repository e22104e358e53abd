package hostdl

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// batchRequest is what every batch request carries: which batch, the
// capability token and who asks.
type batchRequest struct {
	ref      uuid.UUID
	token    [core.TokenSize]byte
	receiver string
	hop      string // the relay or holder that forwards it (Viacodec-Via), or ""
}

// parse reads the batch request's ref, token and receiver, or answers with
// an error and returns false.
func (s *Server) parse(w http.ResponseWriter, r *http.Request) (batchRequest, bool) {
	var req batchRequest
	w.Header().Set(headerProtocol, protocolVersion)
	if vs := r.Header.Values(headerProtocol); len(vs) > 1 {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: more than one %s header", headerProtocol))
		return req, false
	} else if err := checkProtocol(r.Header.Get(headerProtocol), "receiver", "source"); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return req, false
	}
	auths := r.Header.Values("Authorization")
	var scheme, tok string
	ok := len(auths) == 1
	if ok {
		scheme, tok, ok = strings.Cut(auths[0], " ")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || hex.DecodedLen(len(tok)) != core.TokenSize {
		s.fail(w, r, http.StatusUnauthorized, core.NewError(core.KindAuth, nil, "hostdl: missing or malformed bearer token"))
		return req, false
	}
	if _, err := hex.Decode(req.token[:], []byte(tok)); err != nil {
		s.fail(w, r, http.StatusUnauthorized, core.NewError(core.KindAuth, nil, "hostdl: malformed bearer token"))
		return req, false
	}
	ref, ok := parseRefID(r.PathValue("ref"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: ref id is not a UUID in 8-4-4-4-12 form"))
		return req, false
	}
	req.ref = ref
	var status int
	var err error
	if req.receiver, req.hop, status, err = s.who(r); err != nil {
		s.fail(w, r, status, err)
		return req, false
	}
	return req, true
}

// who returns who sends r (its receiver id) and the relay or holder that
// forwards it (hop, "" for none), from the Viacodec-Receiver and
// Viacodec-Via headers.
//
// Without mutual TLS both are claims (400, KindInvalid, when the
// receiver is missing or either is malformed). Under mutual TLS the
// verified client certificate's Subject Common Name is who asks: a
// receiver header, if sent, must repeat it (else 403, KindAuth), and the
// Via header is not taken, since a receipt needs every piece served to
// that id (docs/download-protocol.md §5.3). Unless the name is one of
// ServerOptions.TrustedHops: that hop then asks for the receiver its
// receiver header names (required), and the certificate, not the Via
// header, names the hop.
func (s *Server) who(r *http.Request) (receiver, hop string, status int, err error) {
	for _, h := range []string{headerReceiver, headerVia} {
		if len(r.Header.Values(h)) > 1 {
			return "", "", http.StatusBadRequest, core.NewError(core.KindInvalid, nil, "hostdl: more than one %s header", h)
		}
	}
	claim, via := r.Header.Get(headerReceiver), r.Header.Get(headerVia)
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		switch {
		case !core.ValidReceiverID(cn):
			return "", "", http.StatusForbidden, core.NewError(core.KindAuth, nil,
				"hostdl: the client certificate's Subject CN is not a receiver id (1 to %d printable ASCII characters)", core.MaxReceiverIDLen)
		case s.trusted[cn] && !core.ValidReceiverID(claim):
			return "", "", http.StatusBadRequest, core.NewError(core.KindInvalid, nil,
				"hostdl: a trusted hop must name the receiver it asks for in %s (1 to %d printable ASCII characters)", headerReceiver, core.MaxReceiverIDLen)
		case s.trusted[cn]:
			return claim, cn, 0, nil
		case claim != "" && claim != cn:
			return "", "", http.StatusForbidden, core.NewError(core.KindAuth, nil,
				"hostdl: %s is not the receiver id of the client certificate", headerReceiver)
		}
		return cn, "", 0, nil
	}
	if !core.ValidReceiverID(claim) {
		return "", "", http.StatusBadRequest, core.NewError(core.KindInvalid, nil,
			"hostdl: %s must be 1 to %d printable ASCII characters", headerReceiver, core.MaxReceiverIDLen)
	}
	if via != "" && !core.ValidReceiverID(via) {
		return "", "", http.StatusBadRequest, core.NewError(core.KindInvalid, nil,
			"hostdl: %s must be 1 to %d printable ASCII characters", headerVia, core.MaxReceiverIDLen)
	}
	return claim, via, 0, nil
}

// parseRefID accepts a UUID in its 8-4-4-4-12 hex form only.
func parseRefID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// parseItemID accepts a decimal item id without sign or leading zeros, at
// most 2^31-1 (the manifest's bound).
func parseItemID(s string) (int, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 32)
	return int(v), err == nil
}

// fail answers with an error body; status 0 means the status of err's kind.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status == 0 {
		status = statusOf(core.KindOf(err))
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "hostdl: request failed",
		slog.String("method", cut(r.Method, 16)), slog.String("path", cut(r.URL.Path, maxLogText)),
		slog.Int("status", status), slog.String("kind", core.KindOf(err).String()), slog.String("err", cut(err.Error(), maxLogText)))
	writeError(w, status, err)
}

// guard answers, before any endpoint sees it, a request that names a
// path in a form other than the canonical one (404: no redirect), that
// is meant for another host (421), or that carries a body (400: no
// endpoint takes one; an HTTP/1 connection is closed rather than read
// on, so that a body trickled in cannot hold it).
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "" || p[0] != '/' || r.URL.RawPath != "" || path.Clean(p) != p:
			s.fail(w, r, http.StatusNotFound, core.NewError(core.KindProtocol, nil, "hostdl: no such endpoint (paths are canonical)"))
		case !s.hosts.allows(r.Host):
			s.fail(w, r, http.StatusMisdirectedRequest, core.NewError(core.KindProtocol, nil, "hostdl: this server does not answer for host %q", cut(r.Host, 64)))
		case (r.ContentLength > 0 || (r.ContentLength < 0 && r.ProtoMajor == 1)) && !strings.HasPrefix(p, uploadPrefix):
			if r.ProtoMajor == 1 {
				w.Header().Set("Connection", "close")
				http.NewResponseController(w).SetReadDeadline(time.Now()) // do not wait for the body
			}
			s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: requests carry no body"))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request) {
	req, ok := s.parse(w, r)
	if !ok {
		return
	}
	m, nonce, err := s.table.Manifest(req.ref, req.token[:], req.receiver)
	if err != nil {
		s.fail(w, r, 0, err)
		return
	}
	body := core.MarshalManifest(m)
	h := w.Header()
	h.Set("Content-Type", contentCBOR)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set(headerNonce, nonce)
	w.Write(body)
}

// only answers 405 to requests whose method is not method.
func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			s.fail(w, r, http.StatusMethodNotAllowed, core.NewError(core.KindProtocol, nil, "hostdl: use %s here", method))
			return
		}
		h(w, r)
	}
}

func (s *Server) handleItem(w http.ResponseWriter, r *http.Request) {
	req, ok := s.parse(w, r)
	if !ok {
		return
	}
	item, ok := parseItemID(r.PathValue("item"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: item id is not a decimal number without sign or leading zeros"))
		return
	}
	rng := r.Header.Get("Range")
	if rng == "" {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: an item request needs a Range header"))
		return
	}
	if len(r.Header.Values("Range")) > 1 {
		s.fail(w, r, http.StatusRequestedRangeNotSatisfiable, core.NewError(core.KindProtocol, nil, "hostdl: more than one Range header"))
		return
	}
	off, n, err := parseRange(rng)
	if err != nil {
		s.fail(w, r, http.StatusRequestedRangeNotSatisfiable, err)
		return
	}
	if n > s.opts.MaxRange {
		s.fail(w, r, http.StatusRequestedRangeNotSatisfiable,
			core.NewError(core.KindLimit, nil, "hostdl: range of %d bytes exceeds MaxRange %d", n, s.opts.MaxRange))
		return
	}
	if off%writePiece != 0 {
		s.fail(w, r, http.StatusRequestedRangeNotSatisfiable,
			core.NewError(core.KindInvalid, nil, "hostdl: range starts at byte %d, not at a piece (a multiple of %d)", off, writePiece))
		return
	}
	next, release, err := s.serveRange(req, item, off, n)
	var view []byte // the range's first view, then each next one
	if err == nil {
		if view, err = next(); err != nil {
			release()
		}
	}
	if err != nil {
		status := 0
		if core.KindOf(err) == core.KindInvalid {
			status = http.StatusRequestedRangeNotSatisfiable
		}
		s.fail(w, r, status, err)
		return
	}
	defer release()
	pieces := (n + writePiece - 1) / writePiece
	h := w.Header()
	h.Set("Content-Type", contentPieces)
	h.Set("Content-Length", strconv.FormatInt(n+crcSize*pieces, 10))
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", off, off+n-1))
	h.Set("Cache-Control", "no-store")
	// Write straight from the table's views, piece by piece, each followed
	// by its CRC-32C (pieceWriter). Each piece waits for its turn in the
	// in-flight budget (so a slow reader holds at most one piece of it)
	// and is written under a deadline: the stall limit, and what is left
	// of the minimum rate's allowance. The status goes out with the first
	// piece: a receiver that leaves while its first piece waits counts as
	// gone (499).
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{})
	var writing time.Duration // time spent in writes so far
	pw := pieceWriter{item: item}
	if st, ok := s.table.(pieceSumTable); ok {
		pw.sums = st.PieceSums(req.ref, req.token[:])
	}
	var p int64 // bytes of the range written
	for p < n {
		if view == nil {
			view, err = next()
		}
		if err == nil && len(view) == 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: serve failed",
				slog.String("path", cut(r.URL.Path, maxLogText)), slog.Int64("off", off+p), slog.String("err", err.Error()))
			return // after the status: the receiver sees a short body and asks again
		}
		for v := 0; v < len(view); v += writePiece {
			piece := view[v:min(v+writePiece, len(view))]
			if err := s.sem.acquire(r.Context(), int64(len(piece))); err != nil {
				return // the receiver went away while waiting
			}
			if p == 0 {
				w.WriteHeader(http.StatusPartialContent)
			}
			start := time.Now()
			rc.SetWriteDeadline(start.Add(s.pieceDeadline(p+int64(len(piece)), writing)))
			k, err := pw.write(w, piece, (off+p)/writePiece, p+int64(len(piece)) == n)
			writing += time.Since(start)
			s.sem.release(int64(len(piece)))
			s.m.bytesServed.Add(int64(k))
			if err != nil {
				s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: write failed",
					slog.String("path", cut(r.URL.Path, maxLogText)), slog.Int64("off", off+p), slog.String("err", err.Error()))
				return
			}
			p += int64(len(piece))
		}
		view = nil
	}
}

// serveRange grants a range of an item and returns its views in order: the
// pieces of a pieceTable, or the one view of ServeVia.
func (s *Server) serveRange(req batchRequest, item int, off, n int64) (next func() ([]byte, error), release func(), err error) {
	if pt, ok := s.table.(pieceTable); ok {
		return pt.ServePieces(req.ref, req.token[:], req.receiver, req.hop, item, off, n)
	}
	data, release, err := s.table.ServeVia(req.ref, req.token[:], req.receiver, req.hop, item, off, n)
	if err != nil {
		return nil, nil, err
	}
	next = func() ([]byte, error) {
		v := data
		data = nil
		return v, nil
	}
	return next, release, nil
}

// pieceWriter writes a range's pieces, each followed by its CRC-32C, with
// one gathered write per piece and no allocation per piece. A piece whose
// sum the source knows (core.PieceSums: it sent the piece before) goes out
// with it in one write. One whose sum it does not know is checksummed right
// after the write read it (a piece fits in a core's cache: no second pass
// over memory; a byte changed in between makes the receiver fetch the
// piece again), and its sum goes out at the head of the next piece's write,
// or, for a range's last piece, is computed before, to go out with it
// rather than in a write of its own after the handler.
type pieceWriter struct {
	sums    *core.PieceSums // the batch's known sums (nil: none kept)
	item    int
	head    [crcSize]byte // the sum of the piece written last, if pending
	pending bool          // head is still to be written
	tail    [crcSize]byte // the sum of the piece being written, if known
	iov     [3][]byte
	bufs    net.Buffers
}

// write writes the sum of the piece before, if one is pending, then piece k
// of the item (from byte k times writePiece) and its sum when known, and
// returns how many of the piece's bytes it wrote. Given to net/http's
// ReadFrom, net.Buffers reaches the TCP connection's writev with no
// buffering in between: one syscall for sums and piece where Writes cost
// one each (the 4 bytes wait in the response's buffer and go out alone
// ahead of the next piece), docs/benchmarks.md. Over TLS or HTTP/2 it falls
// back to one Write per buffer. A piece under gatherMin bytes (a small
// item, a range's last piece) is copied into the response's buffer
// instead, to go out with the header or what follows.
func (pw *pieceWriter) write(w io.Writer, piece []byte, k int64, last bool) (int, error) {
	var head, tail []byte
	if pw.pending {
		head = pw.head[:]
		pw.pending = false
	}
	sum, known := pw.sums.Get(pw.item, k)
	if !known && last {
		sum, known = core.Checksum(piece), true
		pw.sums.Set(pw.item, k, sum)
	}
	if known {
		binary.BigEndian.PutUint32(pw.tail[:], sum)
		tail = pw.tail[:]
	}
	var n int64
	var err error
	switch rf, ok := w.(io.ReaderFrom); {
	case len(piece) < gatherMin:
		var k int
		if k, err = w.Write(head); err == nil {
			n = int64(k)
			k, err = w.Write(piece)
			n += int64(k)
		}
		if err == nil {
			_, err = w.Write(tail)
		}
	default:
		pw.iov = [3][]byte{head, piece, tail}
		pw.bufs = pw.iov[:]
		if ok {
			n, err = rf.ReadFrom(&pw.bufs)
		} else {
			n, err = pw.bufs.WriteTo(w)
		}
	}
	written := int(min(max(n-int64(len(head)), 0), int64(len(piece))))
	if err != nil || known {
		return written, err
	}
	sum = core.Checksum(piece)
	pw.sums.Set(pw.item, k, sum)
	binary.BigEndian.PutUint32(pw.head[:], sum)
	pw.pending = true
	return written, nil
}

const (
	// writePiece is the piece size: a range is written in pieces of the
	// manifest's piece size, each followed by its checksum and written
	// under the stall deadline.
	writePiece = core.DefaultBlockSize
	crcSize    = 4        // bytes of a piece's checksum in a range's body
	gatherMin  = 16 << 10 // bytes of a piece below which pieceWriter copies it
)

// pieceDeadline returns how long the write of a piece may take that ends a
// response's first end bytes, after writing took writing so far: at most
// WriteStall, and at most what keeps the response at MinWriteRate with
// one piece of slack. Zero or less ends the response at once.
func (s *Server) pieceDeadline(end int64, writing time.Duration) time.Duration {
	d := s.opts.WriteStall
	if rate := s.opts.MinWriteRate; rate > 0 {
		allowed := time.Duration(float64(end+writePiece) / float64(rate) * float64(time.Second))
		d = min(d, allowed-writing)
	}
	return d
}

// parseRange parses "bytes=first-last", the one form the protocol uses.
func parseRange(v string) (off, n int64, err error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	a, b, ok2 := strings.Cut(spec, "-")
	first, err1 := parseDecimal(a)
	last, err2 := parseDecimal(b)
	if !ok || !ok2 || err1 != nil || err2 != nil || last < first {
		return 0, 0, core.NewError(core.KindProtocol, nil, "hostdl: Range %q is not bytes=first-last", cut(v, 64))
	}
	return first, last - first + 1, nil
}

func parseDecimal(s string) (int64, error) {
	if s == "" || len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal")
	}
	return strconv.ParseInt(s, 10, 64)
}

func (s *Server) handleReceipt(w http.ResponseWriter, r *http.Request) {
	req, ok := s.parse(w, r)
	if !ok {
		return
	}
	nonce := r.Header.Get(headerNonce)
	if nonce == "" {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: a receipt needs a %s header", headerNonce))
		return
	}
	if err := s.table.ConfirmVia(req.ref, req.token[:], req.receiver, req.hop, nonce); err != nil {
		s.fail(w, r, 0, err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: receipt",
		slog.String("ref", req.ref.String()), slog.String("receiver", req.receiver))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeMetrics(w, s.Stats())
}

// statusClientGone counts requests whose receiver went away before any
// answer (nginx's 499).
const statusClientGone = 499

// instrument counts every response by status and logs it at Debug.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		switch {
		case status != 0:
		case r.Context().Err() != nil:
			status = statusClientGone // nothing written: the receiver left first
		default:
			status = http.StatusOK
		}
		s.m.request(status, r.ProtoMajor)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			recv, _, _, _ := s.who(r)
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: request",
				slog.String("method", cut(r.Method, 16)), slog.String("path", cut(r.URL.Path, maxLogText)), slog.String("proto", cut(r.Proto, 16)),
				slog.String("receiver", recv), slog.Int("status", status), slog.Duration("took", time.Since(start)))
		}
	})
}
