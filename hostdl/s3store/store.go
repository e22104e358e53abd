// Package s3store lets an object store (S3 or any S3-compatible store)
// hold a source's batches for it: the source uploads each batch once, and
// any number of receivers download it from the store with plain ranged
// HTTP requests under presigned GET URLs, so that the source's own uplink
// carries one copy of a batch however many receivers it has.
//
// The source side (this package) uses minio-go's presign and multipart
// code. Receivers need nothing of it: a hostdl.Client downloads a batch
// whose holder is an object URL (docs/wire-format.md §3.5, "object+...")
// with the same parallel, ranged, checksummed fetch as from a Host, and no
// credentials. The manifest and the receipt still
// go to the origin, so completion keeps its meaning; the protocol is in
// docs/download-protocol.md §8.4.
package s3store

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

// Defaults and limits of Options.
const (
	DefaultPartSize = 16 << 20 // bytes of one multipart part
	MinPartSize     = 5 << 20  // S3's smallest part (but the last)
	DefaultParallel = 4        // parts uploaded at once
	// MaxExpiry is the longest a presigned URL may live (S3's limit).
	MaxExpiry = 7 * 24 * time.Hour
	// deleteTimeout bounds the requests that delete a batch's objects.
	deleteTimeout = 30 * time.Second
)

// Options configure a Store. Endpoint and Bucket are required.
type Options struct {
	// Endpoint is the store's base URL: "https://s3.us-east-1.amazonaws.com",
	// "http://127.0.0.1:8333". Plain http is for loopback and tests: the
	// presigned URLs then travel and are used in clear text.
	Endpoint string
	// Bucket holds the objects; it must exist. Nothing in it is made
	// public: receivers read only through presigned URLs.
	Bucket string
	// Prefix, if not empty, is where under the bucket this store keeps its
	// transactions ("models/run-7"): one folder per transaction,
	// Prefix/<expiry>-<ref id>/, which Sweep reads.
	Prefix string
	// Region is the bucket's region; default "us-east-1".
	Region string
	// AccessKey, SecretKey and SessionToken sign the store's requests and
	// the presigned URLs. They never appear in a message. FromEnv fills them
	// from the usual AWS environment variables.
	AccessKey, SecretKey, SessionToken string
	// PartSize is the size of one part of a multipart upload: default
	// DefaultPartSize, at least MinPartSize. A batch of at most one part is
	// uploaded in one PUT.
	PartSize int64
	// Parallel is how many parts are uploaded at once: default
	// DefaultParallel. Parts are read straight from the batch's items, so
	// the upload holds no copy of them.
	Parallel int
	// Expiry is how long a presigned URL, and so the objects, live: zero
	// means the transaction's inactivity timeout (PublishOptions.Timeout,
	// or core.DefaultTimeout), at least 1 s (the store's least) and at
	// most MaxExpiry. When it ends the objects
	// are deleted, even if the transaction is still open: receivers that
	// come later fall back to the origin (docs/download-protocol.md §8.4).
	Expiry time.Duration
	// Transport, if not nil, carries the store's own requests.
	Transport http.RoundTripper
	// Logger receives the failures to delete; default slog.Default().
	Logger *slog.Logger
}

// Store uploads batches to a bucket and deletes them when their
// transactions end. It is safe for concurrent use.
type Store struct {
	o  Options
	mc *minio.Client

	mu     sync.Mutex
	closed bool
	held   map[uuid.UUID]*held
	wg     sync.WaitGroup // the goroutines that wait to delete
}

// held is one batch in the store.
type held struct {
	folder   string        // Prefix/<expiry>-<ref id>/
	stop     chan struct{} // closed (once) to delete the batch now
	stopOnce sync.Once
}

// EnvNames are the environment variables FromEnv and ParseURL read, those
// of the shared credentials file included: a library that another
// language loads copies them from that process's environment, which may
// have changed since the library loaded, before it opens a store.
var EnvNames = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL",
	"AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "HOME",
}

// FromEnv fills the credentials and region of o that are empty from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
// AWS_REGION (or AWS_DEFAULT_REGION), and from the shared credentials file
// (~/.aws/credentials, profile AWS_PROFILE or "default") when the
// environment has no keys.
func (o Options) FromEnv() Options {
	if o.AccessKey == "" && o.SecretKey == "" {
		for _, p := range []credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}} {
			v, err := p.RetrieveWithCredContext(nil)
			if err == nil && v.AccessKeyID != "" {
				o.AccessKey, o.SecretKey, o.SessionToken = v.AccessKeyID, v.SecretAccessKey, v.SessionToken
				break
			}
		}
	}
	if o.Region == "" {
		o.Region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	return o
}

// ParseURL returns the options of the store that "s3://BUCKET/PREFIX"
// names, filled FromEnv: the endpoint from AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL (an S3-compatible store), else AWS's for the region.
func ParseURL(s string) (Options, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Options{}, core.NewError(core.KindInvalid, err, "s3store: %q is not s3://BUCKET/PREFIX", s)
	}
	o := Options{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}.FromEnv()
	o.Endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	if o.Endpoint == "" {
		o.Endpoint = "https://s3." + orDefault(o.Region, "us-east-1") + ".amazonaws.com"
	}
	return o, nil
}

// Open returns the store that "s3://BUCKET/PREFIX" names (ParseURL:
// credentials, region and endpoint from the AWS environment), logging to
// logger (nil: slog.Default()). It makes no request. The command's -store
// and the C ABI's host option store open their stores with it.
func Open(u string, logger *slog.Logger) (*Store, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	o.Logger = logger
	return New(o)
}

// New validates o and returns a store. It makes no request.
func New(o Options) (*Store, error) {
	u, err := url.Parse(o.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return nil, core.NewError(core.KindInvalid, err, "s3store: Endpoint %q is not an http:// or https:// base URL", o.Endpoint)
	case o.Bucket == "":
		return nil, core.NewError(core.KindInvalid, nil, "s3store: Options.Bucket is empty")
	case o.AccessKey == "" || o.SecretKey == "":
		return nil, core.NewError(core.KindInvalid, nil, "s3store: no credentials (Options.AccessKey and SecretKey, or FromEnv): a store without them would need public objects")
	case o.PartSize != 0 && o.PartSize < MinPartSize:
		return nil, core.NewError(core.KindInvalid, nil, "s3store: Options.PartSize %d is below %d", o.PartSize, MinPartSize)
	case o.Parallel < 0:
		return nil, core.NewError(core.KindInvalid, nil, "s3store: Options.Parallel %d is negative", o.Parallel)
	case o.Expiry < 0 || o.Expiry > MaxExpiry:
		return nil, core.NewError(core.KindInvalid, nil, "s3store: Options.Expiry %v is outside 0..%v", o.Expiry, MaxExpiry)
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Parallel == 0 {
		o.Parallel = DefaultParallel
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken),
		Secure:    u.Scheme == "https",
		Region:    o.Region,
		Transport: o.Transport,
	})
	if err != nil {
		return nil, core.NewError(core.KindInvalid, err, "s3store: %s", o.Endpoint)
	}
	return &Store{o: o, mc: mc, held: map[uuid.UUID]*held{}}, nil
}

// Publish publishes msg's batch at host h as h.Publish does, uploads it
// to the store, and returns the transaction and msg re-pointed at the
// store: each receiver then downloads the batch's bytes from the store and
// asks h only for the manifest and the receipt. The batch's objects are
// deleted when the transaction ends (completed, timed out, aborted,
// deleted) or their URL expires, whichever comes first. On error the
// transaction is aborted and nothing is left in the store. A message with
// no batch is returned as it is, with no transaction.
func (s *Store) Publish(ctx context.Context, h *hostdl.Host, msg *core.Message, o core.PublishOptions) (*core.Transaction, *core.Message, error) {
	b := msg.Batch()
	if b == nil {
		return nil, msg, nil
	}
	tx, err := h.Publish(b, o)
	if err != nil {
		return nil, nil, err
	}
	expiry := s.o.Expiry
	if expiry == 0 {
		expiry = min(max(orDefault(o.Timeout, core.DefaultTimeout), time.Second), MaxExpiry)
	}
	holder, err := s.Hold(ctx, tx, b, expiry)
	if err != nil {
		tx.Abort()
		return nil, nil, err
	}
	dm, err := core.DecOptions{}.DecMode()
	if err != nil {
		tx.Abort()
		return nil, nil, err
	}
	out, err := dm.ReholdMessage(msg, func(r core.BatchRef) (string, error) {
		if r.RefID != b.Ref.RefID {
			return r.Holder, nil
		}
		return holder, nil
	})
	if err != nil {
		tx.Abort()
		return nil, nil, err
	}
	return tx, out, nil
}

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ObjectHolder is how a holder that names an object begins
// (docs/wire-format.md §3.5): "object+" and the object's presigned URL.
const ObjectHolder = hostdl.ObjectHolder

// Hold uploads b, published as tx, into a folder of its own that expires
// after expiry, and returns the holder for b's descriptor: ObjectHolder
// and a GET URL presigned for expiry. The object is each item's frames
// (its pieces, each followed by its CRC-32C), item after item in the
// batch's (and so the manifest's) order, uploaded in parts of PartSize,
// Parallel at once, read straight from the items. It is deleted when tx
// ends, when expiry has passed, or when the store closes. Receivers read
// it where the origin cannot see them, so tx's receipts then need no
// pieces served by the origin (core.Transaction.ServedElsewhere).
func (s *Store) Hold(ctx context.Context, tx *core.Transaction, b *core.Batch, expiry time.Duration) (string, error) {
	if expiry <= 0 || expiry > MaxExpiry {
		return "", core.NewError(core.KindInvalid, nil, "s3store: expiry %v is outside (0, %v]", expiry, MaxExpiry)
	}
	r, err := newBatchReader(b)
	if err != nil {
		return "", err
	}
	until := time.Now().Add(expiry)
	folder := s.folder(until, b.Ref.RefID)
	key := folder + objectName
	hd := &held{folder: folder, stop: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", core.NewError(core.KindInvalid, hostdl.ErrClosed, "s3store: hold %s: the store is closed", b.Ref)
	}
	if s.held[b.Ref.RefID] != nil {
		s.mu.Unlock()
		return "", core.NewError(core.KindInvalid, nil, "s3store: %s is held already", b.Ref)
	}
	s.held[b.Ref.RefID] = hd
	s.wg.Add(1)
	s.mu.Unlock()
	go s.deleteAtEnd(b.Ref.RefID, hd, tx, until)

	_, err = s.mc.PutObject(ctx, s.o.Bucket, key, r, r.size, minio.PutObjectOptions{
		PartSize:    uint64(s.o.PartSize),
		NumThreads:  uint(s.o.Parallel),
		ContentType: "application/octet-stream",
	})
	if err != nil {
		s.release(b.Ref.RefID)
		return "", storeError(err, "s3store: upload %s to %s/%s", b.Ref, s.o.Bucket, key)
	}
	u, err := s.mc.PresignedGetObject(ctx, s.o.Bucket, key, expiry, nil)
	if err != nil {
		s.release(b.Ref.RefID)
		return "", storeError(err, "s3store: presign %s/%s", s.o.Bucket, key)
	}
	tx.ServedElsewhere()
	return ObjectHolder + u.String(), nil
}

// objectName is the name of a batch's object in its folder.
const objectName = "batch"

// folderTime is the layout of a folder's expiry: UTC, sortable.
const folderTime = "20060102T150405Z"

// folder returns the folder of a batch that expires at until.
func (s *Store) folder(until time.Time, ref uuid.UUID) string {
	f := until.UTC().Format(folderTime) + "-" + ref.String() + "/"
	if s.o.Prefix != "" {
		f = s.o.Prefix + "/" + f
	}
	return f
}

// deleteAtEnd waits for tx to end, the expiry, the store to close or the
// upload to fail, and then deletes the batch's folder.
func (s *Store) deleteAtEnd(ref uuid.UUID, hd *held, tx *core.Transaction, until time.Time) {
	defer s.wg.Done()
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-tx.Done():
	case <-t.C:
	case <-hd.stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	if err := s.removeFolder(ctx, hd.folder); err != nil {
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "s3store: could not delete a batch's objects: Sweep removes them",
			slog.String("folder", hd.folder), slog.String("err", err.Error()))
	}
	s.mu.Lock()
	if s.held[ref] == hd {
		delete(s.held, ref)
	}
	s.mu.Unlock()
}

// release deletes ref's objects now (an upload that failed).
func (s *Store) release(ref uuid.UUID) {
	s.mu.Lock()
	hd := s.held[ref]
	s.mu.Unlock()
	if hd != nil {
		hd.once()
	}
}

func (hd *held) once() { hd.stopOnce.Do(func() { close(hd.stop) }) }

// removeFolder deletes every object and every unfinished multipart
// upload under folder.
func (s *Store) removeFolder(ctx context.Context, folder string) error {
	var errs []error
	for up := range s.mc.ListIncompleteUploads(ctx, s.o.Bucket, folder, true) {
		if up.Err != nil {
			errs = append(errs, up.Err)
			break
		}
		if err := s.mc.RemoveIncompleteUpload(ctx, s.o.Bucket, up.Key); err != nil {
			errs = append(errs, err)
		}
	}
	objs := make(chan minio.ObjectInfo)
	listErr := make(chan error, 1)
	go func() {
		defer close(objs)
		for o := range s.mc.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: folder, Recursive: true}) {
			if o.Err != nil {
				listErr <- o.Err
				return
			}
			objs <- o
		}
		listErr <- nil
	}()
	for e := range s.mc.RemoveObjects(ctx, s.o.Bucket, objs, minio.RemoveObjectsOptions{}) {
		errs = append(errs, e.Err)
	}
	errs = append(errs, <-listErr)
	if err := errors.Join(errs...); err != nil {
		return storeError(err, "s3store: delete %s/%s", s.o.Bucket, folder)
	}
	return nil
}

// Sweep deletes the folders under Prefix whose expiry is before now: what
// a source that crashed (or lost the store) left behind. Run it from time
// to time, from any process with the store's credentials and Prefix, or
// give the bucket a lifecycle rule that expires objects under Prefix
// after MaxExpiry. A folder of a live transaction is never swept: its
// expiry is that of its URL, after which no receiver can read it. Sweep
// returns how many folders it deleted.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	root := ""
	if s.o.Prefix != "" {
		root = s.o.Prefix + "/"
	}
	var folders []string
	for o := range s.mc.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: root}) {
		if o.Err != nil {
			return 0, storeError(o.Err, "s3store: sweep: list %s/%s", s.o.Bucket, root)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, root), "/")
		if !ok || len(name) < len(folderTime)+1 {
			continue // not a folder of ours
		}
		until, err := time.Parse(folderTime, name[:len(folderTime)])
		if err != nil || name[len(folderTime)] != '-' || uuid.Validate(name[len(folderTime)+1:]) != nil {
			continue
		}
		if until.Before(now) {
			folders = append(folders, o.Key)
		}
	}
	n := 0
	for _, f := range folders {
		if err := s.removeFolder(ctx, f); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close deletes the objects of every batch still held and returns when
// that is done. Hold fails from now on. Closing again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, hd := range s.held {
		hd.once()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// storeError wraps an error of the store's client: an S3 refusal of our
// credentials is KindAuth, a missing bucket KindUnknownRef, anything else
// KindUnavailable.
func storeError(err error, format string, args ...any) error {
	k := core.KindUnavailable
	switch minio.ToErrorResponse(err).Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		k = core.KindAuth
	case "NoSuchBucket":
		k = core.KindUnknownRef
	}
	if errors.Is(err, context.Canceled) {
		k = core.KindAborted
	} else if errors.Is(err, context.DeadlineExceeded) {
		k = core.KindTimeout
	}
	return core.NewError(k, err, format, args...)
}

// batchReader reads a batch as its object holds it: each item's frames
// (its pieces of the manifest's piece size, each followed by its CRC-32C,
// big-endian), item after item, as one stream and at any offset
// (io.ReaderAt: minio-go then uploads parts in parallel straight from the
// items, without buffering them). Each CRC is computed when its bytes are
// read.
type batchReader struct {
	items [][]byte
	offs  []int64 // each item's offset in the stream
	ps    int64   // the piece size
	size  int64
	pos   int64
}

func newBatchReader(b *core.Batch) (*batchReader, error) {
	r := &batchReader{ps: int64(b.Manifest().BlockSize)}
	for _, it := range b.Items {
		if it.Extern != nil {
			return nil, core.NewError(core.KindInvalid, nil, "s3store: item %d of %s is held elsewhere (an extern array): its holder must upload it", it.ID, b.Ref)
		}
		r.items = append(r.items, it.Data)
		r.offs = append(r.offs, r.size)
		r.size += hostdl.FramedSize(int64(len(it.Data)), r.ps)
	}
	return r, nil
}

func (r *batchReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

func (r *batchReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	i := sort.Search(len(r.offs), func(i int) bool { return r.offs[i] > off }) - 1
	for ; i >= 0 && i < len(r.items) && n < len(p); i++ {
		it := r.items[i]
		at := off + int64(n) - r.offs[i] // the offset in the item's frames
		end := hostdl.FramedSize(int64(len(it)), r.ps)
		for at < end && n < len(p) {
			k, in := at/(r.ps+4), at%(r.ps+4) // piece k, in it at in
			piece := it[k*r.ps : min((k+1)*r.ps, int64(len(it)))]
			if in < int64(len(piece)) {
				c := copy(p[n:], piece[in:])
				n, at = n+c, at+int64(c)
				continue
			}
			var sum [4]byte
			binary.BigEndian.PutUint32(sum[:], core.Checksum(piece))
			c := copy(p[n:], sum[in-int64(len(piece)):])
			n, at = n+c, at+int64(c)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
