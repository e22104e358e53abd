// Package abihost is the C ABI's host: a hostdl.Host behind the export
// layer's handles (internal/abi), which encodes by reference, publishes,
// serves and downloads, and the transactions it publishes. It is apart
// from internal/abi because only capi needs the network: the wasm host
// and guest, which use internal/abi, link no hostdl.
package abihost

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/hostdl/s3store"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/offload"
)

// HostOptions mirrors the shells' host options; zero fields mean the
// defaults.
type HostOptions struct {
	Listen       string // default "127.0.0.1:0"; the port may be a range, first-last
	Name         string // receiver id; default the certificate's CN, else DefaultName, else a random UUID
	DefaultName  string // receiver id when Name is unset and no client certificate names one
	Advertise    string // base URL, or a host alone (with the port bound); default from the listener
	TLSCert      string // this host's certificate (server, and client certificate)
	TLSKey       string
	TLSCA        string // CA of the peers: verifies servers, and clients with ClientAuth
	ClientAuth   bool   // the server demands client certificates the CA signed
	RefThreshold int64  // default core.DefaultRefThreshold
	Concurrency  int64  // parallel ranges per download; default hostdl's
	ChunkSize    int64  // range size; default hostdl's
	// RequestTimeoutNs fails a download request when no byte of it
	// arrives for this long (connecting included): default hostdl's 30 s.
	// Retries is how often a failed request is tried again: default
	// hostdl's 4, negative never. A download that cannot start fails
	// within about (Retries+1) × RequestTimeoutNs.
	RequestTimeoutNs int64
	Retries          int64
	HTTP2            bool // download over HTTP/2 instead of HTTP/1.1
	// AllowCleartext lets a host without TLS listen on, or advertise, an
	// address that is not loopback (hostdl.ServerOptions.AllowCleartext):
	// its tokens then cross the network in the clear. Without it such a
	// host fails to start.
	AllowCleartext bool
	// NoListen makes a host that listens on nothing (Listen and Advertise
	// unset): a site that can only dial out, behind NAT or a firewall.
	// It downloads as any host does, and publishes a batch only by
	// upload (PublishOptions.Upload), to a holder that granted it.
	NoListen bool
	// Store, if set, is an object store, "s3://BUCKET/PREFIX"
	// (s3store.Open: credentials, region and endpoint from the AWS
	// environment), that holds what the host publishes: receivers download
	// the arrays from there and ask the host only for the manifest and
	// the receipt (docs/download-protocol.md §8.4).
	Store string
	// TrustedHops are, under mutual TLS, the certificate names of the
	// relays and holders that may ask and confirm for the receivers
	// behind them (hostdl.ServerOptions.TrustedHops).
	TrustedHops []string
}

// Host publishes what it encodes by reference and serves it, and downloads
// what it decodes. Released through a handle, it cancels its downloads
// (Cancel), and once the calls in progress have returned, ends its open
// transactions and stops its server (Close).
type Host struct {
	host         *hostdl.Host
	refThreshold int64
	noListen     bool           // publishes only by upload
	store        *s3store.Store // holds what it publishes, if not nil

	ctx    context.Context // ends when the host is released
	cancel context.CancelFunc
}

// hostOptions are hostdl's options for o.
func (o HostOptions) hostOptions() (hostdl.HostOptions, error) {
	if o.Retries < math.MinInt32 || o.Retries > math.MaxInt32 {
		return hostdl.HostOptions{}, abi.Errorf(core.KindInvalid, "option retries %d is out of range", o.Retries)
	}
	if o.Concurrency < 0 || o.Concurrency > math.MaxInt32 {
		return hostdl.HostOptions{}, abi.Errorf(core.KindInvalid, "option concurrency %d is out of range", o.Concurrency)
	}
	for _, h := range o.TrustedHops {
		if !core.ValidReceiverID(h) {
			return hostdl.HostOptions{}, abi.Errorf(core.KindInvalid, "option trusted_hops %q is not a receiver id (1 to %d printable ASCII characters)", h, core.MaxReceiverIDLen)
		}
	}
	proto := hostdl.HTTP1
	if o.HTTP2 {
		proto = hostdl.HTTP2
	}
	server := hostdl.ServerOptions{Addr: o.Listen, Advertise: o.Advertise, AllowCleartext: o.AllowCleartext, TrustedHops: o.TrustedHops}
	if o.NoListen {
		if o.Listen != "" || o.Advertise != "" {
			return hostdl.HostOptions{}, abi.Errorf(core.KindInvalid, "a host that listens on nothing has no listen address or advertised name")
		}
		server = hostdl.ServerOptions{Listener: newNoListener()}
		if o.Store != "" {
			return hostdl.HostOptions{}, abi.Errorf(core.KindInvalid, "a host that listens on nothing has no store: its receivers could not reach it for the manifest and the receipt")
		}
	}
	return hostdl.HostOptions{
		Server: server,
		Client: hostdl.ClientOptions{Receiver: o.Name, Protocol: proto, Concurrency: int(o.Concurrency), ChunkSize: o.ChunkSize,
			RequestTimeout: time.Duration(o.RequestTimeoutNs), Retries: int(o.Retries)},
		DefaultReceiver: o.DefaultName,
		TLSFiles:        hostdl.TLSFiles{CertFile: o.TLSCert, KeyFile: o.TLSKey, CAFile: o.TLSCA},
		ClientAuth:      o.ClientAuth,
		RefThreshold:    o.RefThreshold,
		Logger:          hostdl.LoggerFromEnv(),
	}, nil
}

// CheckHostOptions checks o as NewHost does, without listening: a shell
// that makes its host later refuses options at once.
func CheckHostOptions(o HostOptions) error {
	ho, err := o.hostOptions()
	if err != nil {
		return err
	}
	if err := ho.Check(); err != nil {
		return abi.Wrap(err, "host")
	}
	if o.Store != "" {
		st, err := s3store.Open(o.Store, ho.Logger)
		if err != nil {
			return abi.Wrap(err, "host")
		}
		st.Close()
	}
	return nil
}

// NewHost starts a host.
func NewHost(o HostOptions) (*Host, error) {
	ho, err := o.hostOptions()
	if err != nil {
		return nil, err
	}
	var st *s3store.Store
	if o.Store != "" {
		if st, err = s3store.Open(o.Store, ho.Logger); err != nil {
			return nil, abi.Wrap(err, "host")
		}
	}
	h, err := hostdl.NewHost(ho)
	if err != nil {
		if st != nil {
			st.Close()
		}
		return nil, abi.Wrap(err, "host")
	}
	mode, err := h.EncMode(core.EncOptions{})
	if err != nil {
		h.Close()
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{host: h, refThreshold: mode.Options().RefThreshold, noListen: o.NoListen, store: st, ctx: ctx, cancel: cancel}, nil
}

// Source returns the base URL receivers download this host's batches from;
// "" for a host that listens on nothing.
func (h *Host) Source() string {
	if h.noListen {
		return ""
	}
	return h.host.Source()
}

// Listening reports whether the host listens (HostOptions.NoListen unset).
func (h *Host) Listening() bool { return !h.noListen }

// Name returns the host's receiver id.
func (h *Host) Name() string { return h.host.Receiver() }

// Stats returns the host's server counters.
func (h *Host) Stats() hostdl.ServerStats { return h.host.Stats() }

// Cancel ends the host's downloads in progress.
func (h *Host) Cancel() { h.cancel() }

// Close ends the host's open transactions (StateDeleted) and stops its
// server gracefully. Transaction handles stay valid and report the outcome.
// A release has no caller left to report a failed shutdown to: hostdl logs
// it, and the server is stopped either way.
//
// A host with a store then deletes the objects of its batches still held,
// and returns when that is done.
func (h *Host) Close() {
	h.host.Close()
	if h.store != nil {
		h.store.Close()
	}
}

// PublishOptions mirrors the shells' publish options; zero fields mean the
// defaults.
type PublishOptions struct {
	MaxDepth     int64 // default 128
	RefThreshold int64 // default the host's
	// Receivers is how many confirmations complete the transaction: with
	// Names at most len(Names), 0 meaning all of them; without, 0 means
	// unknown (the transaction ends by timeout).
	Receivers int64
	Quorum    int64
	// Names, if not nil, are the only receiver ids that may download and
	// confirm (core.PublishOptions.Names): each a receiver id as hosts
	// report them, 1 to 256 printable ASCII characters, none repeated.
	// nil lets any receiver in; empty but not nil is an error, since no
	// receiver could download.
	Names []string
	// MaxReceivers bounds the receivers recorded when Names is nil:
	// default the larger of core.DefaultMaxReceivers and Receivers.
	MaxReceivers int64
	TimeoutNs    int64 // inactivity timeout; default core's 5 minutes
	Snapshot     bool  // copy the arrays at publish time
	// Upload, if set, is a grant (GrantUpload's JSON, from the holder):
	// the batch is uploaded to the grant's holder, which holds its
	// transaction, instead of being published here. The caller's memory
	// is free when Encode returns.
	Upload string
}

// GrantUpload grants one upload of at most maxBytes to this host, to be
// committed within timeoutNs (0: hostdl's default), and returns the grant
// as JSON for the source (hostdl.Host.GrantUpload).
func (h *Host) GrantUpload(maxBytes, timeoutNs int64) (string, error) {
	if h.noListen {
		return "", abi.Errorf(core.KindInvalid, "grant upload: this host listens on nothing: no source could upload to it")
	}
	if maxBytes <= 0 || timeoutNs < 0 {
		return "", abi.Errorf(core.KindInvalid, "grant upload: max_bytes %d must be positive and timeout_ns %d not negative", maxBytes, timeoutNs)
	}
	g, err := h.host.GrantUpload(hostdl.UploadOptions{MaxBytes: maxBytes, Timeout: time.Duration(timeoutNs)})
	if err != nil {
		return "", err
	}
	j, err := json.Marshal(g)
	return string(j), err
}

// Encode encodes the caller's skeleton by reference and publishes the
// batch, if any: the Tx is nil when every array went inline. Unless
// Snapshot is set, the batch views the slots' memory until the Tx is
// closed. The end of ctx (or of the host) ends an upload in progress, to
// a holder or to the host's store, with KindAborted.
func (h *Host) Encode(ctx context.Context, skel []byte, slots []abi.Slot, o PublishOptions) (*core.Message, *Tx, error) {
	depth, err := abi.IntOption("max_depth", o.MaxDepth)
	if err != nil {
		return nil, nil, err
	}
	receivers, err := abi.IntOption("receivers", o.Receivers)
	if err != nil {
		return nil, nil, err
	}
	quorum, err := abi.IntOption("quorum", o.Quorum)
	if err != nil {
		return nil, nil, err
	}
	maxReceivers, err := abi.IntOption("max_receivers", o.MaxReceivers)
	if err != nil {
		return nil, nil, err
	}
	if err := checkNames(o.Names); err != nil {
		return nil, nil, err
	}
	if o.TimeoutNs < 0 {
		return nil, nil, abi.Errorf(core.KindInvalid, "option timeout_ns %d is negative", o.TimeoutNs)
	}
	threshold := o.RefThreshold
	if threshold == 0 {
		threshold = h.refThreshold
	}
	var grant hostdl.UploadGrant
	mode, err := h.host.EncMode(core.EncOptions{MaxDepth: depth, RefThreshold: threshold})
	if o.Upload != "" && err == nil {
		if err := json.Unmarshal([]byte(o.Upload), &grant); err != nil || grant.Holder == "" {
			return nil, nil, abi.Errorf(core.KindInvalid, "option upload is not a grant of GrantUpload (%v)", err)
		}
		// The batch's receivers download it from the holder.
		mode, err = core.EncOptions{ByRef: true, MaxDepth: depth, RefThreshold: threshold, Source: grant.Holder}.EncMode()
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := abi.Encode(skel, slots, mode)
	if err != nil {
		return nil, nil, err
	}
	b := m.Batch()
	if b == nil {
		return m, nil, nil
	}
	if h.noListen && o.Upload == "" {
		return nil, nil, abi.Errorf(core.KindInvalid, "this host listens on nothing: publish by upload, under a grant from a host its receivers reach")
	}
	po := core.PublishOptions{
		Names: o.Names, Receivers: receivers, MaxReceivers: maxReceivers, Quorum: quorum,
		Timeout: time.Duration(o.TimeoutNs), Snapshot: o.Snapshot,
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(h.ctx, stop)()
	if o.Upload != "" {
		if h.store != nil {
			return nil, nil, abi.Errorf(core.KindInvalid, "option upload: this host publishes to its store; a grant is for a host that listens on nothing")
		}
		up, err := h.host.Client().Upload(ctx, grant, b, po)
		if err != nil {
			return nil, nil, err
		}
		return m, newUploadTx(up), nil
	}
	if h.store != nil {
		tx, held, err := h.store.Publish(ctx, h.host, m, po)
		if err != nil {
			return nil, nil, err
		}
		return held, newTx(tx), nil
	}
	tx, err := h.host.Publish(b, po)
	if err != nil {
		return nil, nil, err
	}
	return m, newTx(tx), nil
}

// checkNames checks the receiver ids of PublishOptions.Names, as core
// does, with errors that name the option as a binding's caller knows it;
// and a names list that is present but empty is an error here, not "any
// receiver".
func checkNames(names []string) error {
	if names != nil && len(names) == 0 {
		return abi.Errorf(core.KindInvalid, "option names is empty: no receiver could download (leave it unset to let any receiver in)")
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if !core.ValidReceiverID(n) {
			return abi.Errorf(core.KindInvalid, "option names[%d] %q is not a receiver id (1 to %d printable ASCII characters)", i, n, core.MaxReceiverIDLen)
		}
		if j, ok := seen[n]; ok {
			return abi.Errorf(core.KindInvalid, "option names[%d] %q repeats names[%d]", i, n, j)
		}
		seen[n] = i
	}
	return nil
}

// CheckHost checks that h is a host handle of t, or 0: the library's own
// client, which downloads with a random receiver id and no TLS files.
func CheckHost(t *abi.Table, h int64) error {
	if h == 0 {
		return nil
	}
	_, done, err := abi.Use[*Host](t, h, "a host handle")
	if err == nil {
		done()
	}
	return err
}

// FetchThrough is Fetch through the host that d was decoded with (a
// handle of t), or the library's own client, made on first use.
func FetchThrough(t *abi.Table, d *abi.Decoded, dsts []abi.Slot, timeoutNs int64) error {
	if d.Host() == 0 {
		defaultClient.once.Do(func() {
			defaultClient.c, defaultClient.err = hostdl.NewClient(hostdl.ClientOptions{Logger: hostdl.LoggerFromEnv()})
		})
		if defaultClient.err != nil {
			return abi.Wrap(defaultClient.err, "default client")
		}
		return abi.Fetch(context.Background(), defaultClient.c, d, dsts, timeoutNs)
	}
	h, done, err := abi.Use[*Host](t, d.Host(), "a host handle")
	if err != nil {
		return err
	}
	defer done()
	return abi.Fetch(h.ctx, h.host.Fetcher(), d, dsts, timeoutNs)
}

var defaultClient struct {
	once sync.Once
	c    *hostdl.Client
	err  error
}

// Tx is a published transaction. Unless the batch is a snapshot, it views
// the caller's memory until Close has returned: Close ends the transaction
// (StateAborted, if still open) and waits until nothing reads that memory.
//
// A Tx of an upload (PublishOptions.Upload) lives at the holder: it views
// no memory of the caller, cannot be aborted from here, and is open until
// Wait has learnt its outcome from the holder.
type Tx struct {
	tx  *core.Transaction
	up  *hostdl.Upload
	mu  sync.Mutex
	out *core.Outcome // an upload's outcome, once Wait learnt it

	ctx    context.Context // ends when the handle is released, ending waits
	cancel context.CancelFunc
}

func newTx(tx *core.Transaction) *Tx {
	ctx, cancel := context.WithCancel(context.Background())
	return &Tx{tx: tx, ctx: ctx, cancel: cancel}
}

func newUploadTx(up *hostdl.Upload) *Tx {
	ctx, cancel := context.WithCancel(context.Background())
	return &Tx{up: up, ctx: ctx, cancel: cancel}
}

// RefID returns the batch's ref id.
func (t *Tx) RefID() string {
	if t.up != nil {
		return t.up.Ref().RefID.String()
	}
	return t.tx.Ref().RefID.String()
}

// Cancel ends the waits in progress.
func (t *Tx) Cancel() { t.cancel() }

// Close aborts the transaction if it is open and waits until no serve
// reads the caller's memory any more.
func (t *Tx) Close() {
	if t.up != nil {
		return // the holder has its own copy
	}
	t.tx.Abort()
	<-t.tx.Done() // no serve of the items is in progress any more (a manifest reads none)
}

// Abort ends the transaction (StateAborted) if it is still open; an
// upload's is the holder's to end.
func (t *Tx) Abort() {
	if t.up == nil {
		t.tx.Abort()
	}
}

// Status returns the transaction as it is now, and whether it has ended
// and stopped reading the caller's memory (bar Close's last check).
func (t *Tx) Status() (core.Outcome, bool) {
	if t.up != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.out != nil {
			return *t.out, true
		}
		return core.Outcome{State: core.StateOpen}, false
	}
	if out, ok := t.tx.Outcome(); ok {
		return out, true
	}
	state, rs := t.tx.Status()
	return core.Outcome{State: state, Receivers: rs}, false
}

// Wait waits for the transaction to end, for at most timeoutNs (negative:
// no limit, 0: just look). It fails with KindTimeout when time runs out and
// KindAborted when the handle is released meanwhile.
func (t *Tx) Wait(timeoutNs int64) (core.Outcome, error) {
	if t.up != nil {
		return t.waitUpload(timeoutNs)
	}
	if out, ok := t.tx.Outcome(); ok {
		return out, nil
	}
	ctx, cancel := t.waitContext(timeoutNs)
	defer cancel()
	out, err := t.tx.Wait(ctx)
	if err != nil {
		if out, ok := t.tx.Outcome(); ok { // ended as time ran out
			return out, nil
		}
		return core.Outcome{}, t.waitError(err)
	}
	return out, nil
}

// waitContext is the handle's context, bounded by timeoutNs when it is
// not negative.
func (t *Tx) waitContext(timeoutNs int64) (context.Context, context.CancelFunc) {
	if timeoutNs < 0 {
		return t.ctx, func() {}
	}
	return context.WithTimeout(t.ctx, time.Duration(timeoutNs))
}

// waitError is err, or KindAborted when the handle was released meanwhile.
func (t *Tx) waitError(err error) error {
	if t.ctx.Err() != nil {
		return abi.Errorf(core.KindAborted, "the transaction handle was released while waiting")
	}
	return err
}

// Offload is FetchThrough with every array slot of d landing in a
// safetensors file that it creates in dir (package offload), named by
// the slot's path in the message; byte-string slots are not in the file
// (fill them with abi.Fill). It returns the file's path and each slot's
// offset in it (-1 for a slot not in the file). The file is complete when
// Offload returns, and the caller's: it removes the file when done. On
// error no file is left behind.
func Offload(t *abi.Table, d *abi.Decoded, dir string, timeoutNs int64) (path string, offsets []int64, err error) {
	body, err := abi.DecodeSkeleton(d.Skeleton.Bytes())
	if err != nil {
		return "", nil, err
	}
	slots := d.Plan().Slots
	f, err := offload.Create(offload.Options{Dir: dir, Keep: true}, slots, offload.Names(body, len(slots)))
	if err != nil {
		return "", nil, err
	}
	defer f.Close() // unmaps; removes the file unless sealed
	dsts := make([]abi.Slot, len(slots))
	offsets = make([]int64, len(slots))
	for i, s := range slots {
		if offsets[i] = f.Offset(i); offsets[i] >= 0 {
			dsts[i] = abi.Slot{Data: f.Slot(i), DType: int32(s.DType), File: f.Writer(i)}
		}
	}
	if err := FetchThrough(t, d, dsts, timeoutNs); err != nil {
		return "", nil, err
	}
	if err := f.Seal(); err != nil {
		return "", nil, err
	}
	return f.Path(), offsets, nil
}

// waitUpload asks the holder for the upload's outcome, as Wait.
func (t *Tx) waitUpload(timeoutNs int64) (core.Outcome, error) {
	if out, ok := t.Status(); ok {
		return out, nil
	}
	ctx, cancel := t.waitContext(timeoutNs)
	defer cancel()
	out, err := t.up.Wait(ctx)
	if err != nil {
		return core.Outcome{}, t.waitError(err)
	}
	t.mu.Lock()
	t.out = &out
	t.mu.Unlock()
	return out, nil
}
