package hostdl

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Upload is a batch a source published by uploading it to a holder: the
// transaction lives at the holder, and the source learns its outcome by
// asking (Wait).
type Upload struct {
	c    *Client
	g    UploadGrant
	ref  core.BatchRef
	base *url.URL
	auth string
}

// Ref returns the uploaded batch's descriptor: its Source is the holder.
func (u *Upload) Ref() core.BatchRef { return u.ref }

// Upload publishes batch b by uploading it to the holder of grant g, with
// the transaction options o: what a source with no listener does (only
// outbound connections). Encode the message with EncOptions.Source set to
// g.Holder, so that its receivers download from the holder. The manifest
// goes first, then the items in parallel ranges of ChunkSize, each
// checked by the holder against the manifest as it arrives; a range that
// fails is sent again (Retries, with backoff), and then the commit
// publishes the batch at the holder. The items must not change until the
// upload returns. Errors are *core.Error: KindLimit for a batch larger
// than the grant, KindExpired for a grant that expired, KindAuth for a
// wrong grant.
func (c *Client) Upload(ctx context.Context, g UploadGrant, b *core.Batch, o core.PublishOptions) (*Upload, error) {
	if !c.fetches.Enter() {
		return nil, core.NewError(core.KindInvalid, ErrClosed, "hostdl: upload: the client is closed")
	}
	defer c.fetches.Exit()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(c.life, func() { cancel(ErrClosed) })()
	if b == nil || b.Ref.Source != g.Holder {
		return nil, core.NewError(core.KindInvalid, nil, "hostdl: upload: encode the batch with EncOptions.Source = the grant's holder %q", g.Holder)
	}
	base, err := c.resolve(g.Holder)
	if err != nil {
		return nil, err
	}
	u := &Upload{c: c, g: g, ref: b.Ref, base: base.JoinPath("v1", "uploads", g.ID.String()), auth: "Bearer " + g.Token}
	m := b.Manifest()
	if err := u.send(ctx, http.MethodPut, "manifest", [][]byte{core.MarshalManifest(m)}, map[string]string{
		headerBatchToken: hex.EncodeToString(b.Ref.Token[:]), "Content-Type": contentCBOR,
	}); err != nil {
		return nil, err
	}
	if err := u.items(ctx, b, m); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(commitRequest{
		Receivers: o.Receivers, Names: o.Names, MaxReceivers: o.MaxReceivers, Quorum: o.Quorum,
		TimeoutMS: o.Timeout.Milliseconds(),
	})
	if err := u.send(ctx, http.MethodPost, "commit", [][]byte{body}, map[string]string{"Content-Type": contentJSON}); err != nil {
		return nil, err
	}
	return u, nil
}

// items sends every item's bytes in ranges of ChunkSize, Concurrency at
// once; the first range that fails for good stops the others.
func (u *Upload) items(parent context.Context, b *core.Batch, m *core.Manifest) error {
	type rng struct {
		id       int
		data     []byte
		off, end int64
	}
	var ranges []rng
	for i, it := range b.Items {
		mi := &m.Items[i]
		for off, n := range m.Chunks(mi, u.c.opts.ChunkSize) {
			ranges = append(ranges, rng{it.ID, it.Data, off, off + n})
		}
	}
	return parallel(parent, len(ranges), u.c.opts.Concurrency, "upload "+u.ref.String(), func(ctx context.Context, i int) error {
		r := ranges[i]
		return u.send(ctx, http.MethodPut, "items/"+strconv.Itoa(r.id), frames(r.data[r.off:r.end]), map[string]string{
			"Content-Type":  contentPieces,
			"Content-Range": fmt.Sprintf("bytes %d-%d/*", r.off, r.end-1),
		})
	})
}

// frames returns the body of a range of an item that starts on a piece:
// each piece's bytes (views of data), then its CRC-32C, as a download's
// range carries them (docs/download-protocol.md §5.2).
func frames(data []byte) [][]byte {
	parts := make([][]byte, 0, 2*((len(data)+writePiece-1)/writePiece))
	for p := 0; p < len(data); p += writePiece {
		piece := data[p:min(p+writePiece, len(data))]
		parts = append(parts, piece, binary.BigEndian.AppendUint32(nil, core.Checksum(piece)))
	}
	return parts
}

// send makes one request with the body parts under the grant, retrying as
// a download's requests are (a checksum refusal included), and expects
// 204.
func (u *Upload) send(ctx context.Context, method, path string, parts [][]byte, hdr map[string]string) error {
	what := method + " " + path + " of upload " + u.g.ID.String()
	f := &fetch{c: u.c}
	corrupt := 0
	return f.retry(ctx, what, func(a *attempt, _ int) error {
		for {
			body := make([]io.Reader, len(parts))
			var n int64
			for i, p := range parts {
				body[i] = bytes.NewReader(p)
				n += int64(len(p))
			}
			req, err := http.NewRequestWithContext(a.ctx, method, u.base.JoinPath(path).String(), io.MultiReader(body...))
			if err != nil {
				return core.NewError(core.KindInvalid, err, "hostdl: %s", what)
			}
			req.ContentLength = n
			req.Header.Set(headerProtocol, protocolVersion)
			req.Header.Set("Authorization", u.auth)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := u.c.hc.Do(req)
			if err != nil {
				return requestError(ctx, a, err, what)
			}
			if resp.StatusCode == http.StatusNoContent {
				resp.Body.Close()
				return nil
			}
			err = readError(resp, what)
			resp.Body.Close()
			if core.KindOf(err) != core.KindChecksum || corrupt >= u.c.opts.Retries {
				return err
			}
			corrupt++ // the bytes broke on the way: send them again
			a.timer.Reset(a.timeout)
		}
	})
}

// Wait returns the outcome of the uploaded batch's transaction once it
// has ended at the holder, asking the holder (one outbound request at a
// time, each answered within 20 s), or an error when ctx ends first
// (KindTimeout or KindAborted) or the holder cannot say (its error).
func (u *Upload) Wait(ctx context.Context) (core.Outcome, error) {
	what := "outcome of upload " + u.g.ID.String()
	f := &fetch{c: u.c}
	for {
		var out *outcomeAnswer
		err := f.retry(ctx, what, func(a *attempt, _ int) error {
			req, err := http.NewRequestWithContext(a.ctx, http.MethodGet, u.base.JoinPath("outcome").String(), nil)
			if err != nil {
				return core.NewError(core.KindInvalid, err, "hostdl: %s", what)
			}
			req.Header.Set(headerProtocol, protocolVersion)
			req.Header.Set("Authorization", u.auth)
			resp, err := u.c.hc.Do(req)
			if err != nil {
				return requestError(ctx, a, err, what)
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusNoContent:
				return nil
			case http.StatusOK:
				data, err := io.ReadAll(io.LimitReader(stallReader{resp.Body, a}, 1<<20))
				if err != nil {
					return requestError(ctx, a, err, what)
				}
				var ans outcomeAnswer
				if err := json.Unmarshal(data, &ans); err != nil {
					return core.NewError(core.KindProtocol, err, "hostdl: %s", what)
				}
				out = &ans
				return nil
			}
			return readError(resp, what)
		})
		if err != nil {
			return core.Outcome{}, err
		}
		if out != nil {
			return out.outcome(), nil
		}
		if ctx.Err() != nil {
			return core.Outcome{}, ctxError(ctx, what)
		}
	}
}

// outcome turns the holder's answer into a core.Outcome: the state, and
// the receivers that confirmed.
func (a *outcomeAnswer) outcome() core.Outcome {
	o := core.Outcome{State: core.StateTimedOut}
	for s := core.StateOpen; s <= core.StateDeleted; s++ {
		if s.String() == a.State {
			o.State = s
		}
	}
	now := time.Now()
	for _, id := range a.Confirmed {
		o.Receivers = append(o.Receivers, core.ReceiverStatus{ID: id, State: core.ReceiverConfirmed, LastSeen: now})
	}
	return o
}
