package hostdl

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
}

// parse reads the batch request's ref, token and receiver, or answers with
// an error and returns false.
func (s *Server) parse(w http.ResponseWriter, r *http.Request) (batchRequest, bool) {
	var req batchRequest
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || hex.DecodedLen(len(tok)) != core.TokenSize {
		s.fail(w, r, http.StatusUnauthorized, core.NewError(core.KindAuth, nil, "hostdl: missing or malformed bearer token"))
		return req, false
	}
	if _, err := hex.Decode(req.token[:], []byte(tok)); err != nil {
		s.fail(w, r, http.StatusUnauthorized, core.NewError(core.KindAuth, nil, "hostdl: malformed bearer token"))
		return req, false
	}
	ref, err := uuid.Parse(r.PathValue("ref"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: ref id is not a UUID"))
		return req, false
	}
	req.ref = ref
	req.receiver = r.Header.Get(headerReceiver)
	if !validReceiver(req.receiver) {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindInvalid, nil,
			"hostdl: %s must be 1 to %d printable ASCII characters", headerReceiver, maxReceiverLen))
		return req, false
	}
	return req, true
}

func validReceiver(id string) bool {
	if id == "" || len(id) > maxReceiverLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
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
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("kind", core.KindOf(err).String()), slog.String("err", err.Error()))
	writeError(w, status, err)
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
	item, err := strconv.Atoi(r.PathValue("item"))
	if err != nil || item < 0 {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: item id is not a number"))
		return
	}
	rng := r.Header.Get("Range")
	if rng == "" {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: an item request needs a Range header"))
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
	data, release, err := s.table.Serve(req.ref, req.token[:], req.receiver, item, off, n)
	if err != nil {
		status := 0
		if core.KindOf(err) == core.KindInvalid {
			status = http.StatusRequestedRangeNotSatisfiable
		}
		s.fail(w, r, status, err)
		return
	}
	defer release()
	// Only an authorised range waits for its turn to write.
	if err := s.sem.acquire(r.Context(), n); err != nil {
		return // the receiver went away while waiting
	}
	defer s.sem.release(n)
	h := w.Header()
	h.Set("Content-Type", contentBytes)
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", off, off+n-1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPartialContent)
	// Write straight from the table's view, piece by piece, each piece
	// under the stall deadline.
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{})
	for p := 0; p < len(data); p += writePiece {
		rc.SetWriteDeadline(time.Now().Add(s.opts.WriteStall))
		k, err := w.Write(data[p:min(p+writePiece, len(data))])
		s.m.bytesServed.Add(int64(k))
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: write failed",
				slog.String("path", r.URL.Path), slog.Int64("off", off+int64(p)), slog.String("err", err.Error()))
			return
		}
	}
}

// parseRange parses "bytes=first-last", the one form the protocol uses.
func parseRange(v string) (off, n int64, err error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	a, b, ok2 := strings.Cut(spec, "-")
	first, err1 := parseDecimal(a)
	last, err2 := parseDecimal(b)
	if !ok || !ok2 || err1 != nil || err2 != nil || last < first {
		return 0, 0, core.NewError(core.KindProtocol, nil, "hostdl: Range %q is not bytes=first-last", v)
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
	if err := s.table.Confirm(req.ref, req.token[:], req.receiver, nonce); err != nil {
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
			recv := r.Header.Get(headerReceiver)
			if !validReceiver(recv) {
				recv = ""
			}
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("proto", r.Proto),
				slog.String("receiver", recv), slog.Int("status", status), slog.Duration("took", time.Since(start)))
		}
	})
}
