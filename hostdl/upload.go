package hostdl

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// Upload defaults and bounds.
const (
	DefaultUploadBudget  = 1 << 30         // bytes a host holds for uploads at once
	DefaultUploadTimeout = 5 * time.Minute // from the grant to the commit
	uploadPrefix         = "/v1/uploads/"
	headerBatchToken     = "Viacodec-Batch-Token" // the batch's read token, with an upload's manifest
	outcomeWait          = 20 * time.Second       // longest wait of one outcome request, under the client's RequestTimeout
)

// UploadOptions bound one upload a holder grants.
type UploadOptions struct {
	// MaxBytes is the most item bytes the batch may have: 1 to the host's
	// UploadBudget. Required.
	MaxBytes int64
	// Timeout is how long the source has to upload and commit the batch:
	// 1ms to 24h, default 5 min. Once committed, the batch's transaction
	// has the timeout the source asked for.
	Timeout time.Duration
}

// UploadGrant is a capability to upload one batch to a holder: where, under
// which id and token, how many bytes at most and until when. The holder
// (Host.GrantUpload) hands it to the source through a channel the source
// reaches (in FL, the task message the client fetched); the source then
// needs no listener, only one outbound connection to the holder
// (Client.Upload). Its token lets its bearer upload this one batch and
// learn its outcome; keep it as secret as a batch token.
type UploadGrant struct {
	Holder   string    `json:"holder"`    // the holder's base URL
	ID       uuid.UUID `json:"id"`        // the upload's id
	Token    string    `json:"token"`     // 64 hex digits
	MaxBytes int64     `json:"max_bytes"` // most item bytes
	Expires  time.Time `json:"expires"`   // commit before this
}

// uploads are the grants and uploads a Host holds for sources that cannot
// be reached.
type uploads struct {
	h      *Host
	budget int64
	once   sync.Once // registers the endpoints with the first grant

	mu      sync.Mutex
	granted int64 // MaxBytes of the grants alive
	m       map[uuid.UUID]*upload
	closed  bool
}

// upload is one granted upload, and once committed, its transaction.
type upload struct {
	g       UploadGrant
	token   [core.TokenSize]byte // the grant's
	timer   *time.Timer          // drops an upload not committed by Expires
	m       *core.Manifest       // the source's, with the batch's token
	batchTk [core.TokenSize]byte
	data    [][]byte   // the items, in manifest order
	have    [][]bool   // blocks received, per item
	crcs    [][]uint32 // their CRCs, as checked
	missing int        // blocks still to come
	writing int        // item writes in progress
	tx      *core.Transaction
}

func newUploads(h *Host, budget int64) *uploads {
	return &uploads{h: h, budget: budget, m: map[uuid.UUID]*upload{}}
}

// GrantUpload lets one source that cannot be reached upload one batch of
// at most o.MaxBytes to this host, within o.Timeout: give the grant to
// the source. The host holds the bytes in memory: every grant's MaxBytes
// counts against HostOptions.UploadBudget until the upload expires
// uncommitted or its transaction ends, and a grant beyond the budget is
// refused (KindLimit). The committed batch is published in the host's
// table; its receivers download it from the host (the host itself reads
// it locally), and their receipts end the transaction, whose outcome the
// source learns by asking (Upload.Wait).
func (h *Host) GrantUpload(o UploadOptions) (UploadGrant, error) {
	f := fields{typ: "UploadOptions"}
	bound(&f, "Timeout", &o.Timeout, DefaultUploadTimeout, time.Millisecond, 24*time.Hour)
	if o.MaxBytes == 0 {
		o.MaxBytes = -1 // required
	}
	bound(&f, "MaxBytes", &o.MaxBytes, 0, 1, h.uploads.budget)
	if f.err != nil {
		return UploadGrant{}, core.NewError(core.KindInvalid, f.err, "hostdl: grant upload")
	}
	if _, ok := h.table.(publisher); !ok {
		return UploadGrant{}, core.NewError(core.KindInvalid, nil, "hostdl: the host's table (%T) does not publish core batches", h.table)
	}
	u := &upload{}
	id, err := uuid.NewRandomFromReader(h.rand)
	if err == nil {
		_, err = io.ReadFull(h.rand, u.token[:])
	}
	if err != nil {
		return UploadGrant{}, core.NewError(core.KindInvalid, err, "hostdl: grant upload: randomness")
	}
	u.g = UploadGrant{Holder: h.Source(), ID: id, Token: hex.EncodeToString(u.token[:]), MaxBytes: o.MaxBytes, Expires: h.clock().Add(o.Timeout)}
	us := h.uploads
	us.once.Do(us.register)
	us.mu.Lock()
	defer us.mu.Unlock()
	switch {
	case us.closed:
		return UploadGrant{}, core.NewError(core.KindInvalid, ErrClosed, "hostdl: grant upload: the host is closed")
	case us.granted+o.MaxBytes > us.budget:
		return UploadGrant{}, core.NewError(core.KindLimit, nil, "hostdl: grant upload of %d bytes: %d of the upload budget %d are granted", o.MaxBytes, us.granted, us.budget)
	}
	us.granted += o.MaxBytes
	us.m[id] = u
	u.timer = time.AfterFunc(o.Timeout, func() { us.expire(id, u) })
	return u.g, nil
}

// register adds the upload endpoints to the host's server.
func (us *uploads) register() {
	s := us.h.server
	s.mux.HandleFunc(uploadPrefix+"{id}/manifest", s.only(http.MethodPut, us.handleManifest))
	s.mux.HandleFunc(uploadPrefix+"{id}/items/{item}", s.only(http.MethodPut, us.handleItem))
	s.mux.HandleFunc(uploadPrefix+"{id}/commit", s.only(http.MethodPost, us.handleCommit))
	s.mux.HandleFunc(uploadPrefix+"{id}/outcome", s.only(http.MethodGet, us.handleOutcome))
}

// expire drops an upload that was not committed in time.
func (us *uploads) expire(id uuid.UUID, u *upload) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if us.m[id] == u && u.tx == nil {
		us.dropLocked(id, u)
	}
}

// dropLocked forgets an upload and gives its bytes back to the budget.
func (us *uploads) dropLocked(id uuid.UUID, u *upload) {
	delete(us.m, id)
	us.granted -= u.g.MaxBytes
	u.timer.Stop()
	u.data, u.have, u.crcs = nil, nil, nil
}

func (us *uploads) close() {
	us.mu.Lock()
	defer us.mu.Unlock()
	us.closed = true
	for id, u := range us.m {
		us.dropLocked(id, u)
	}
}

// lookup checks an upload request's grant id and token. It answers and
// returns nil when they are not good.
func (us *uploads) lookup(w http.ResponseWriter, r *http.Request) *upload {
	s := us.h.server
	w.Header().Set(headerProtocol, protocolVersion)
	if err := checkProtocol(r.Header.Get(headerProtocol), "uploader", "holder"); err != nil || len(r.Header.Values(headerProtocol)) > 1 {
		if err == nil {
			err = core.NewError(core.KindProtocol, nil, "hostdl: more than one %s header", headerProtocol)
		}
		s.fail(w, r, http.StatusBadRequest, err)
		return nil
	}
	id, ok := parseRefID(r.PathValue("id"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: upload id is not a UUID in 8-4-4-4-12 form"))
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var token [core.TokenSize]byte
	if n, err := hex.Decode(token[:], []byte(tok)); !ok || err != nil || n != core.TokenSize || len(r.Header.Values("Authorization")) != 1 {
		s.fail(w, r, http.StatusUnauthorized, core.NewError(core.KindAuth, nil, "hostdl: missing or malformed bearer token"))
		return nil
	}
	us.mu.Lock()
	u := us.m[id]
	us.mu.Unlock()
	switch {
	case u == nil:
		s.fail(w, r, http.StatusGone, core.NewError(core.KindExpired, nil, "hostdl: upload %s is unknown, expired or over", id))
		return nil
	case subtle.ConstantTimeCompare(u.token[:], token[:]) != 1:
		s.fail(w, r, http.StatusForbidden, core.NewError(core.KindAuth, nil, "hostdl: wrong token for upload %s", id))
		return nil
	}
	return u
}

// handleManifest takes the batch's manifest and read token, and makes
// room for its items.
func (us *uploads) handleManifest(w http.ResponseWriter, r *http.Request) {
	s := us.h.server
	u := us.lookup(w, r)
	if u == nil {
		return
	}
	var batchTk [core.TokenSize]byte
	if n, err := hex.Decode(batchTk[:], []byte(r.Header.Get(headerBatchToken))); err != nil || n != core.TokenSize {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: an upload's manifest needs %s (64 hex digits)", headerBatchToken))
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, DefaultMaxManifestBytes+1))
	if err != nil || len(data) > DefaultMaxManifestBytes {
		s.fail(w, r, http.StatusRequestEntityTooLarge, core.NewError(core.KindLimit, err, "hostdl: an upload's manifest is at most %d bytes", DefaultMaxManifestBytes))
		return
	}
	m, err := core.UnmarshalManifest(data, DefaultMaxItems)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	total := int64(0)
	for _, it := range m.Items {
		total += it.Bytes
	}
	if m.BlockSize < 4<<10 || m.BlockSize > 64<<20 {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, nil, "hostdl: an upload's block size %d is outside 4 KiB..64 MiB", m.BlockSize))
		return
	}
	if total > u.g.MaxBytes {
		s.fail(w, r, http.StatusRequestEntityTooLarge, core.NewError(core.KindLimit, nil, "hostdl: a batch of %d bytes exceeds the %d bytes granted", total, u.g.MaxBytes))
		return
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	switch {
	case u.m != nil && (u.m.RefID != m.RefID || !bytesEqualManifest(u.m, m) || u.batchTk != batchTk):
		s.fail(w, r, http.StatusConflict, core.NewError(core.KindProtocol, nil, "hostdl: upload %s already has another manifest", u.g.ID))
		return
	case u.m == nil && u.data == nil && us.m[u.g.ID] == u:
		u.m, u.batchTk = m, batchTk
		u.data, u.have, u.crcs = make([][]byte, len(m.Items)), make([][]bool, len(m.Items)), make([][]uint32, len(m.Items))
		bs := int64(m.BlockSize)
		for i, it := range m.Items {
			u.data[i] = make([]byte, it.Bytes)
			u.have[i] = make([]bool, (it.Bytes+bs-1)/bs)
			u.crcs[i] = make([]uint32, len(u.have[i]))
			u.missing += len(u.have[i])
		}
	case us.m[u.g.ID] != u:
		s.fail(w, r, http.StatusGone, core.NewError(core.KindExpired, nil, "hostdl: upload %s expired", u.g.ID))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func bytesEqualManifest(a, b *core.Manifest) bool {
	return string(core.MarshalManifest(a)) == string(core.MarshalManifest(b))
}

// handleItem takes a range of an item, "Content-Range: bytes a-b/*",
// starting on a piece and ending on one or at the item's end, as frames
// (each piece's bytes, then its CRC-32C), and checks each piece as it
// arrives.
func (us *uploads) handleItem(w http.ResponseWriter, r *http.Request) {
	s := us.h.server
	u := us.lookup(w, r)
	if u == nil {
		return
	}
	id, ok := parseItemID(r.PathValue("item"))
	us.mu.Lock()
	m, committed := u.m, u.tx != nil
	us.mu.Unlock()
	if m == nil || committed {
		s.fail(w, r, http.StatusConflict, core.NewError(core.KindProtocol, nil, "hostdl: upload %s takes items after its manifest and before its commit", u.g.ID))
		return
	}
	idx := -1
	for i := range m.Items {
		if ok && m.Items[i].ID == id {
			idx = i
		}
	}
	if idx < 0 {
		s.fail(w, r, http.StatusNotFound, core.NewError(core.KindUnknownRef, nil, "hostdl: no such item in upload %s", u.g.ID))
		return
	}
	mi := &m.Items[idx]
	cr, _ := strings.CutSuffix(r.Header.Get("Content-Range"), "/*")
	off, n, err := parseRange(strings.Replace(cr, "bytes ", "bytes=", 1))
	bs := int64(m.BlockSize)
	if err != nil || off%bs != 0 || off+n > mi.Bytes || ((off+n)%bs != 0 && off+n != mi.Bytes) || r.ContentLength != n+crcSize*((n+bs-1)/bs) {
		s.fail(w, r, http.StatusRequestedRangeNotSatisfiable, core.NewError(core.KindInvalid, err,
			"hostdl: an upload's range is Content-Range: bytes a-b/* within the item, on piece boundaries, with a Content-Length of its size and 4 bytes per piece"))
		return
	}
	us.mu.Lock()
	if us.m[u.g.ID] != u || u.data == nil {
		us.mu.Unlock()
		s.fail(w, r, http.StatusGone, core.NewError(core.KindExpired, nil, "hostdl: upload %s expired", u.g.ID))
		return
	}
	dst := u.data[idx][off : off+n]
	u.writing++
	us.mu.Unlock()
	http.NewResponseController(w).SetReadDeadline(u.g.Expires)
	crcs := make([]uint32, (n+bs-1)/bs)
	_, err = readFrames(r.Body, dst, bs, func(p int64, crc uint32) { crcs[p/bs] = crc })
	us.mu.Lock()
	u.writing--
	if err == nil && us.m[u.g.ID] == u {
		for b := off / bs; b < (off+n+bs-1)/bs; b++ {
			if !u.have[idx][b] {
				u.have[idx][b] = true
				u.missing--
			}
			u.crcs[idx][b] = crcs[b-off/bs]
		}
	}
	us.mu.Unlock()
	if err != nil {
		if core.KindOf(err) != core.KindChecksum {
			err = core.NewError(core.KindUnavailable, err, "hostdl: upload %s: item %d bytes %d+%d cut short", u.g.ID, id, off, n)
		}
		s.fail(w, r, 0, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// commitRequest is the body of a commit: the transaction's options.
type commitRequest struct {
	Receivers    int      `json:"receivers,omitempty"`
	Names        []string `json:"names,omitempty"`
	MaxReceivers int      `json:"max_receivers,omitempty"`
	Quorum       int      `json:"quorum,omitempty"`
	TimeoutMS    int64    `json:"timeout_ms,omitempty"`
}

// handleCommit publishes the complete batch in the host's table under the
// source's ref id and token, with the transaction options the source
// sent.
func (us *uploads) handleCommit(w http.ResponseWriter, r *http.Request) {
	s := us.h.server
	u := us.lookup(w, r)
	if u == nil {
		return
	}
	var cr commitRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&cr); err != nil {
		s.fail(w, r, http.StatusBadRequest, core.NewError(core.KindProtocol, err, "hostdl: a commit's body is its JSON options"))
		return
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	switch {
	case us.m[u.g.ID] != u:
		s.fail(w, r, http.StatusGone, core.NewError(core.KindExpired, nil, "hostdl: upload %s expired", u.g.ID))
		return
	case u.tx != nil:
		w.WriteHeader(http.StatusNoContent) // a retried commit
		return
	case u.m == nil || u.missing > 0 || u.writing > 0:
		s.fail(w, r, http.StatusConflict, core.NewError(core.KindProtocol, nil, "hostdl: upload %s is not complete", u.g.ID))
		return
	}
	b := &core.Batch{Ref: core.BatchRef{Source: us.h.Source(), RefID: u.m.RefID, Token: u.batchTk, Items: len(u.m.Items)}}
	for i, it := range u.m.Items {
		b.Items = append(b.Items, core.Item{ID: it.ID, DType: it.DType, Shape: it.Shape, Order: it.Order, Data: u.data[i]})
		b.Ref.Bytes += it.Bytes
	}
	tx, err := us.h.table.(publisher).Publish(b, core.PublishOptions{
		Receivers: cr.Receivers, Names: cr.Names, MaxReceivers: cr.MaxReceivers, Quorum: cr.Quorum,
		Timeout: time.Duration(cr.TimeoutMS) * time.Millisecond,
	})
	if err != nil {
		s.fail(w, r, 0, err)
		return
	}
	u.tx = tx
	u.timer.Stop()
	// The pieces were checked as they came: the server sends each with
	// its CRC and computes none.
	if st, ok := us.h.table.(pieceSumTable); ok && u.m.BlockSize == writePiece {
		sums := st.PieceSums(b.Ref.RefID, b.Ref.Token[:])
		for i, it := range u.m.Items {
			for k, crc := range u.crcs[i] {
				sums.Set(it.ID, int64(k), crc)
			}
		}
	}
	id := u.g.ID
	go func() {
		// The bytes go back to the budget when the transaction has ended
		// (the table released its views); its outcome stays answerable
		// for KeepFinished.
		<-tx.Done()
		us.mu.Lock()
		defer us.mu.Unlock()
		if us.m[id] != u {
			return
		}
		us.granted -= u.g.MaxBytes
		u.g.MaxBytes = 0
		u.data, u.have, u.crcs = nil, nil, nil
		time.AfterFunc(core.DefaultKeepFinished, func() {
			us.mu.Lock()
			defer us.mu.Unlock()
			if us.m[id] == u {
				us.dropLocked(id, u)
			}
		})
	}()
	us.h.server.log.LogAttrs(r.Context(), slog.LevelDebug, "hostdl: upload committed",
		slog.String("upload", id.String()), slog.String("ref", b.Ref.RefID.String()), slog.Int64("bytes", b.Ref.Bytes))
	w.WriteHeader(http.StatusNoContent)
}

// outcomeAnswer is the body of a finished upload's outcome.
type outcomeAnswer struct {
	State     string   `json:"state"`
	Confirmed []string `json:"confirmed"`
}

// handleOutcome answers the committed transaction's outcome once it has
// ended (200), or 204 after waiting up to outcomeWait for it.
func (us *uploads) handleOutcome(w http.ResponseWriter, r *http.Request) {
	s := us.h.server
	u := us.lookup(w, r)
	if u == nil {
		return
	}
	us.mu.Lock()
	tx := u.tx
	us.mu.Unlock()
	if tx == nil {
		s.fail(w, r, http.StatusConflict, core.NewError(core.KindProtocol, nil, "hostdl: upload %s is not committed", u.g.ID))
		return
	}
	t := time.NewTimer(outcomeWait)
	defer t.Stop()
	select {
	case <-tx.Done():
	case <-t.C:
		w.WriteHeader(http.StatusNoContent)
		return
	case <-r.Context().Done():
		return
	}
	out, _ := tx.Outcome()
	body, _ := json.Marshal(outcomeAnswer{State: out.State.String(), Confirmed: nonNil(out.Confirmed())})
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Fetcher returns the host's fetcher, the one DecMode uses: a batch held
// in the host's own table is read from it, any other downloaded with the
// host's client.
func (h *Host) Fetcher() core.Fetcher { return localFetcher{h} }

// localFetcher is a Host's fetcher: a batch in the host's own table (an
// upload it holds) is read from the table; any other is downloaded.
type localFetcher struct{ h *Host }

func (f localFetcher) Fetch(ctx context.Context, batch core.BatchRef, items []core.FetchItem) error {
	if t, ok := f.h.table.(*core.Table); ok && batch.Holder == "" && batch.Source == f.h.Source() {
		tf := &core.TableFetcher{Sources: map[string]*core.Table{batch.Source: t}, Receiver: f.h.Receiver()}
		err := tf.Fetch(ctx, batch, items)
		var e *core.Error
		if errors.As(err, &e) {
			return core.NewError(e.Kind, err, "hostdl: read %s from the host's own table", batch)
		}
		return err
	}
	return f.h.client.Fetch(ctx, batch, items)
}
