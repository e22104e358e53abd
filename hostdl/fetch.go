package hostdl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/viacodec/viacodec/core"
)

// fetch is one Client.Fetch of one batch.
type fetch struct {
	c     *Client
	batch core.BatchRef
	base  *url.URL
	auth  string // "Bearer <hex token>": sent, never logged
	who   string // the receiver id sent, when not the client's (a relay forwarding)
	via   string // the relay's own id (Viacodec-Via), when a relay forwards

	// object, when not nil, is where the items' frames are (ObjectHolder):
	// item i's at objOff[i], read with no token and no receiver id.
	object *url.URL
	objOff map[int]int64

	m     *core.Manifest
	nonce string

	progressMu sync.Mutex
	done       int64
	total      int64
}

// chunk is one range of one item.
type chunk struct {
	mi   *core.ManifestItem
	dst  []byte // the item's destination from item offset base on
	base int64  // 0 when dst is the whole item (a relay's piece: the piece's offset)
	off  int64
	n    int64

	file io.WriterAt // the item's core.FetchItem.File, or nil: written instead of dst
	// sum, if not nil, is told each piece's CRC once it matched, with the
	// piece's offset in the item (a relay keeps its upstream's).
	sum func(off int64, crc uint32)
}

// maxFileBlock bounds the block a fetch into a file gathers in memory
// before it writes it: a source that declares bigger blocks is written
// through the destination's memory instead.
const maxFileBlock = 16 << 20

func (f *fetch) run(ctx context.Context, items []core.FetchItem) error {
	if err := f.manifest(ctx); err != nil {
		return err
	}
	if f.object != nil {
		f.objOff = make(map[int]int64, len(f.m.Items))
		var off int64
		for _, mi := range f.m.Items {
			f.objOff[mi.ID] = off
			off += FramedSize(mi.Bytes, int64(f.m.BlockSize))
		}
	}
	var chunks []chunk
	for _, it := range items {
		mi, err := f.m.CheckItem(it)
		if err != nil {
			return err
		}
		f.total += mi.Bytes
		for off, n := range f.m.Chunks(mi, f.chunkSize()) {
			ch := chunk{mi: mi, dst: it.Dst, off: off, n: n}
			if f.m.BlockSize <= maxFileBlock {
				ch.file = it.File
			}
			chunks = append(chunks, ch)
		}
	}
	f.progress(0)
	if err := f.chunks(ctx, chunks); err != nil {
		return err
	}
	err := f.receipt(ctx)
	if f.m.Partial(items) && core.KindOf(err) == core.KindAuth {
		return nil // no delivery of the batch yet (core.Manifest.Partial)
	}
	return err
}

// objectChunk is the least chunk read from an object store: a store's
// request costs more than a Host's (its first byte comes tens of
// milliseconds later), so ranges there are larger (§8.4).
const objectChunk = 16 << 20

// chunkSize is the span of one range request: ChunkSize, or objectChunk
// at least from an object store.
func (f *fetch) chunkSize() int64 {
	if f.object != nil {
		return max(f.c.opts.ChunkSize, objectChunk)
	}
	return f.c.opts.ChunkSize
}

// chunks fetches every chunk with Concurrency workers; the first failure
// stops the others, and chunks returns only when every worker has.
func (f *fetch) chunks(parent context.Context, chunks []chunk) error {
	return parallel(parent, len(chunks), f.c.opts.Concurrency, "fetch "+f.batch.String(), func(ctx context.Context, i int) error {
		if err := f.chunk(ctx, chunks[i]); err != nil {
			return err
		}
		f.progress(chunks[i].n)
		return nil
	})
}

func (f *fetch) progress(n int64) {
	if f.c.opts.Progress == nil {
		return
	}
	f.progressMu.Lock()
	defer f.progressMu.Unlock()
	f.done += n
	f.c.opts.Progress(f.batch.RefID, f.done, f.total)
}

// chunk downloads one chunk into its destination. Each piece is checked
// against the checksum that follows it as soon as it has arrived, while
// it is still in cache. A request that breaks is resumed from the last
// good piece; a piece that fails its checksum is fetched again from its
// start.
func (f *fetch) chunk(ctx context.Context, ch chunk) error {
	what := fmt.Sprintf("item %d bytes %d+%d of %s", ch.mi.ID, ch.off, ch.n, f.batch)
	if f.object != nil {
		what += " from the object store " + f.object.Host
	}
	retries := f.c.opts.Retries
	bs := int64(f.m.BlockSize)
	got, fails, corrupt := int64(0), 0, 0
	for {
		before := got
		err := f.readRange(ctx, ch, &got, what)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return err
		case core.KindOf(err) == core.KindChecksum:
			if corrupt++; corrupt > retries {
				return core.NewError(core.KindChecksum, err, "hostdl: %s: still corrupt after %d tries", what, corrupt)
			}
			f.c.log.LogAttrs(ctx, slog.LevelDebug, "hostdl: checksum mismatch, fetching the piece again",
				slog.String("ref", f.batch.RefID.String()), slog.Int("item", ch.mi.ID), slog.Int64("off", ch.off+got))
			if err := f.c.backoff(ctx, corrupt, what); err != nil {
				return err
			}
		case retryable(err):
			if got-before >= min(bs, ch.n-before) {
				fails = 0 // it moved on: count failures in a row afresh
			}
			if fails++; fails > retries {
				return err
			}
			f.c.log.LogAttrs(ctx, slog.LevelDebug, "hostdl: retrying range",
				slog.String("ref", f.batch.RefID.String()), slog.Int("item", ch.mi.ID),
				slog.Int64("off", ch.off+got), slog.Int("retry", fails), slog.String("err", err.Error()))
			if err := f.c.backoff(ctx, fails, what); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// readRange requests the chunk's bytes from *got (a piece boundary) on and
// reads the body straight into the destination, piece by piece: each
// piece's bytes, then its CRC-32C, which it checks at once. It advances
// *got over the pieces that passed; a piece that breaks off or fails its
// checksum leaves *got at that piece's start.
func (f *fetch) readRange(ctx context.Context, ch chunk, got *int64, what string) error {
	a := f.c.start(ctx)
	defer a.end()
	var req *http.Request
	var err error
	bs := int64(f.m.BlockSize)
	first, last := ch.off+*got, ch.off+ch.n-1
	n := last - first + 1
	framed := n + crcSize*((n+bs-1)/bs) // the body: its pieces, each with its CRC
	rFirst, rLast := first, last        // what Range names
	if f.object != nil {
		// The object holds each item's frames (§8.4); its URL carries its
		// own capability: the token and the receiver's id stay with the
		// source.
		if req, err = http.NewRequestWithContext(a.ctx, http.MethodGet, f.object.String(), nil); err != nil {
			return core.NewError(core.KindInvalid, err, "hostdl: %s", what)
		}
		rFirst = f.objOff[ch.mi.ID] + first + crcSize*(first/bs)
		rLast = rFirst + framed - 1
	} else if req, err = f.request(a.ctx, http.MethodGet, "items/"+strconv.Itoa(ch.mi.ID)); err != nil {
		return err
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(rFirst, 10)+"-"+strconv.FormatInt(rLast, 10))
	resp, err := f.c.hc.Do(req)
	if err != nil {
		return requestError(ctx, a, err, what)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		if f.object != nil {
			return objectError(resp, what)
		}
		return readError(resp, what)
	}
	if f.object == nil {
		if err := checkProtocol(resp.Header.Get(headerProtocol), "source", "receiver"); err != nil {
			return err
		}
	}
	want := fmt.Sprintf("bytes %d-%d/", rFirst, rLast)
	if cr := resp.Header.Get("Content-Range"); resp.ContentLength != framed || !strings.HasPrefix(cr, want) {
		return core.NewError(core.KindProtocol, nil, "hostdl: %s: asked %s, answered %q with %d bytes", what, want, cr, resp.ContentLength)
	}
	body := stallReader{resp.Body, a}
	at := ch.off - ch.base // chunks, and so pieces, start on piece boundaries
	var k int64
	if ch.file != nil {
		k, err = readFramesTo(body, ch.file, ch.off+*got, ch.n-*got, bs)
	} else {
		var sum func(int64, uint32)
		if ch.sum != nil {
			start := ch.off + *got
			sum = func(p int64, crc uint32) { ch.sum(start+p, crc) }
		}
		k, err = readFrames(body, ch.dst[at+*got:at+ch.n], bs, sum)
	}
	*got += k
	switch {
	case core.KindOf(err) == core.KindChecksum:
		return core.NewError(core.KindChecksum, err, "hostdl: %s", what)
	case ch.file != nil && isCoreError(err): // the destination's
		return core.NewError(core.KindOf(err), err, "hostdl: %s", what)
	case err != nil:
		return requestError(ctx, a, err, what)
	}
	// See the end of the body, so that the stream ends cleanly (HTTP/2
	// would reset a stream closed before its end) and the connection is
	// reused.
	var one [1]byte
	body.Read(one[:])
	return nil
}

func isCoreError(err error) bool {
	_, ok := errors.AsType[*core.Error](err)
	return ok
}

// request builds a request for path under the batch, with its token and
// the receiver id.
func (f *fetch) request(ctx context.Context, method, path string) (*http.Request, error) {
	u := f.base.JoinPath("v1", "batches", f.batch.RefID.String(), path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, core.NewError(core.KindInvalid, err, "hostdl: %s %s", method, path)
	}
	req.Header.Set(headerProtocol, protocolVersion)
	req.Header.Set("Authorization", f.auth)
	if f.who != "" {
		req.Header.Set(headerReceiver, f.who)
	} else {
		req.Header.Set(headerReceiver, f.c.opts.Receiver)
	}
	if f.via != "" {
		req.Header.Set(headerVia, f.via)
	}
	return req, nil
}

// retry runs one request until it succeeds, fails for good, or has failed
// Retries+1 times in a row.
func (f *fetch) retry(ctx context.Context, what string, do func(a *attempt, n int) error) error {
	for n := 0; ; n++ {
		a := f.c.start(ctx)
		err := do(a, n)
		a.end()
		if err == nil || !retryable(err) || ctx.Err() != nil || n >= f.c.opts.Retries {
			return err
		}
		f.c.log.LogAttrs(ctx, slog.LevelDebug, "hostdl: retrying",
			slog.String("what", what), slog.Int("retry", n+1), slog.String("err", err.Error()))
		if err := f.c.backoff(ctx, n+1, what); err != nil {
			return err
		}
	}
}

// manifest fetches and checks the batch's manifest and its nonce.
func (f *fetch) manifest(ctx context.Context) error {
	what := "manifest of " + f.batch.String()
	return f.retry(ctx, what, func(a *attempt, _ int) error {
		req, err := f.request(a.ctx, http.MethodGet, "manifest")
		if err != nil {
			return err
		}
		resp, err := f.c.hc.Do(req)
		if err != nil {
			return requestError(ctx, a, err, what)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return readError(resp, what)
		}
		if err := checkProtocol(resp.Header.Get(headerProtocol), "source", "receiver"); err != nil {
			return err
		}
		max := f.c.opts.MaxManifestBytes
		if resp.ContentLength > max {
			return core.NewError(core.KindLimit, nil, "hostdl: %s: %d bytes exceed MaxManifestBytes %d", what, resp.ContentLength, max)
		}
		data, err := io.ReadAll(io.LimitReader(stallReader{resp.Body, a}, max+1))
		if err != nil {
			return requestError(ctx, a, err, what)
		}
		if int64(len(data)) > max {
			return core.NewError(core.KindLimit, nil, "hostdl: %s exceeds MaxManifestBytes %d", what, max)
		}
		m, err := core.UnmarshalManifest(data, f.c.opts.MaxItems)
		if err != nil {
			return err
		}
		if m.RefID != f.batch.RefID {
			return core.NewError(core.KindProtocol, nil, "hostdl: %s: the source sent the manifest of %s", what, m.RefID)
		}
		nonce := resp.Header.Get(headerNonce)
		if nonce == "" {
			return core.NewError(core.KindProtocol, nil, "hostdl: %s: no %s header", what, headerNonce)
		}
		f.m, f.nonce = m, nonce
		return nil
	})
}

// receipt confirms the batch. A retried receipt that finds the transaction
// ended (410) counts as sent: the first attempt most likely ended it.
func (f *fetch) receipt(ctx context.Context) error {
	what := "receipt for " + f.batch.String()
	return f.retry(ctx, what, func(a *attempt, n int) error {
		req, err := f.request(a.ctx, http.MethodPost, "receipt")
		if err != nil {
			return err
		}
		req.Header.Set(headerNonce, f.nonce)
		resp, err := f.c.hc.Do(req)
		if err != nil {
			return requestError(ctx, a, err, what)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusGone && n > 0:
			return nil
		}
		return readError(resp, what)
	})
}

// objectError reports an object store's refusal of a range: the store's
// status with its meaning for a presigned URL (an object store's error
// body is its own, not ours).
func objectError(resp *http.Response, what string) *core.Error {
	err := readError(resp, what)
	switch resp.StatusCode {
	case http.StatusForbidden:
		return core.NewError(core.KindAuth, err, "hostdl: the object store refused the holder's URL (expired, or altered)")
	case http.StatusNotFound:
		return core.NewError(core.KindUnavailable, err, "hostdl: the object store has no such object (deleted, or expired)")
	}
	return err
}
