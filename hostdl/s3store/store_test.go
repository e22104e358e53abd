package s3store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
)

var quiet = slog.New(slog.DiscardHandler)

// newStore returns a store on w under a prefix of the test's own.
func newStore(t testing.TB, w *weed, o Options) *Store {
	o.Endpoint, o.Bucket = w.Endpoint, testBucket
	o.AccessKey, o.SecretKey = testAccess, testSecret
	if o.Prefix == "" {
		o.Prefix = "t/" + uuid.NewString()
	}
	if o.PartSize == 0 {
		o.PartSize = MinPartSize
	}
	o.Logger = quiet
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// source is a host whose message (two arrays, size bytes in all) went to
// the store.
type source struct {
	h    *hostdl.Host
	tx   *core.Transaction
	msg  []byte // re-pointed at the store
	want [][]byte
}

func publish(t testing.TB, s *Store, size int, o core.PublishOptions) *source {
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r := rand.New(rand.NewPCG(uint64(size), 7))
	a := make([]byte, size*3/4)
	b := make([]byte, size-len(a))
	for _, d := range [][]byte{a, b} {
		for i := range d {
			d[i] = byte(r.Uint32())
		}
	}
	aa, _ := core.ArrayOf([]int{len(a)}, a)
	ba, _ := core.ArrayOf([]int{len(b)}, b)
	enc, err := h.EncMode(core.EncOptions{RefThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := enc.Encode(map[string]any{"a": aa, "b": ba})
	if err != nil {
		t.Fatal(err)
	}
	tx, held, err := s.Publish(context.Background(), h, m, o)
	if err != nil {
		t.Fatal(err)
	}
	return &source{h: h, tx: tx, msg: held.Bytes(), want: [][]byte{a, b}}
}

func receiver(t testing.TB, name string, o hostdl.ClientOptions) *hostdl.Host {
	o.Receiver = name
	if o.BackoffMin == 0 {
		o.BackoffMin, o.BackoffMax = time.Millisecond, 10*time.Millisecond
	}
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet, Client: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// fetch decodes the source's message at r and checks it bit for bit.
func (src *source) fetch(r *hostdl.Host) error {
	dm, err := r.DecMode(core.DecOptions{})
	if err != nil {
		return err
	}
	v, err := dm.Decode(src.msg)
	if err != nil {
		return err
	}
	m := v.(map[string]any)
	for i, k := range []string{"a", "b"} {
		if !bytes.Equal(m[k].(*core.Array).Data, src.want[i]) {
			return errors.New("the bytes differ")
		}
	}
	return nil
}

// holder returns the holder of the source's message.
func (src *source) holder(t testing.TB) string {
	dm, _ := core.DecOptions{}.DecMode()
	p, err := dm.Plan(src.msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Batches) != 1 || !strings.HasPrefix(p.Batches[0].Holder, ObjectHolder) {
		t.Fatalf("the message's batches are %v, want one held in the store", p.Batches)
	}
	return p.Batches[0].Holder
}

// withHolder returns the source's message with its holder replaced.
func (src *source) withHolder(t testing.TB, h string) []byte {
	dm, _ := core.DecOptions{}.DecMode()
	out, err := dm.Rehold(src.msg, func(core.BatchRef) (string, error) { return h, nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects lists the keys under the store's prefix.
func objects(t testing.TB, w *weed, s *Store) []string {
	var keys []string
	for o := range w.Client(t).ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Prefix: s.o.Prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// waitEmpty waits until the store's prefix holds no object.
func waitEmpty(t testing.TB, w *weed, s *Store) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		keys := objects(t, w, s)
		if len(keys) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("objects left in the store: %v", keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUploadDownloadBitExact(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{Parallel: 3})
	src := publish(t, s, 23<<20+12345, core.PublishOptions{Receivers: 1}) // 5 parts, the last short
	if h := src.holder(t); strings.Contains(h, testSecret) || !strings.Contains(h, "X-Amz-Signature=") {
		t.Fatalf("holder %q: want a presigned URL and no secret", h)
	}
	if keys := objects(t, w, s); len(keys) != 1 {
		t.Fatalf("objects %v, want the batch's one", keys)
	}
	r := receiver(t, "agent-1", hostdl.ClientOptions{ChunkSize: 1 << 20})
	if err := src.fetch(r); err != nil {
		t.Fatal(err)
	}
	out, err := src.tx.Wait(context.Background())
	if err != nil || out.State != core.StateCompleted {
		t.Fatalf("outcome %v %v, want completed", out, err)
	}
	if got := src.h.Stats().BytesServed; got != 0 {
		t.Errorf("the origin served %d item bytes, want 0 (the store serves them)", got)
	}
	waitEmpty(t, w, s) // deleted at the transaction's end
}

func Test32Receivers(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{})
	src := publish(t, s, 8<<20, core.PublishOptions{Receivers: 32})
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range 32 {
		r := receiver(t, "agent-"+strconv.Itoa(i), hostdl.ClientOptions{ChunkSize: 1 << 20})
		wg.Go(func() { errs[i] = src.fetch(r) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	out, err := src.tx.Wait(context.Background())
	if err != nil || out.State != core.StateCompleted || len(out.Confirmed()) != 32 {
		t.Fatalf("outcome %v %v, want completed by 32", out, err)
	}
	if got := src.h.Stats().BytesServed; got != 0 {
		t.Errorf("the origin served %d item bytes, want 0", got)
	}
	waitEmpty(t, w, s)
}

func TestExpiredURL(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{Expiry: time.Second})
	src := publish(t, s, 1<<20, core.PublishOptions{})
	time.Sleep(2 * time.Second)
	err := src.fetch(receiver(t, "late", hostdl.ClientOptions{}))
	if core.KindOf(err) != core.KindAuth || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err %v, want auth: the store refused an expired URL", err)
	}
	waitEmpty(t, w, s) // deleted at the URL's expiry
}

func TestTamperedURL(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{})
	src := publish(t, s, 1<<20, core.PublishOptions{})
	h := src.holder(t)
	u, _ := url.Parse(strings.TrimPrefix(h, ObjectHolder))
	q := u.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	sig[0] ^= 1
	q.Set("X-Amz-Signature", string(sig))
	badSig := *u
	badSig.RawQuery = q.Encode()
	otherKey := *u
	otherKey.Path = strings.Replace(u.Path, "/batch", "/other", 1)
	longer := *u
	q = u.Query()
	q.Set("X-Amz-Expires", "604800")
	longer.RawQuery = q.Encode()
	unsigned := *u
	unsigned.RawQuery = ""
	for name, tampered := range map[string]*url.URL{"signature": &badSig, "key": &otherKey, "expiry": &longer, "unsigned": &unsigned} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get(tampered.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("plain GET: status %d, want 403", resp.StatusCode)
			}
			msg := src.withHolder(t, ObjectHolder+tampered.String())
			dm, _ := receiver(t, "r", hostdl.ClientOptions{}).DecMode(core.DecOptions{})
			_, err = dm.Decode(msg)
			if core.KindOf(err) != core.KindAuth || !strings.Contains(err.Error(), "refused the holder's URL") {
				t.Fatalf("err %v, want auth: the store refused the URL", err)
			}
		})
	}
	if err := src.fetch(receiver(t, "honest", hostdl.ClientOptions{})); err != nil {
		t.Fatalf("the untampered URL: %v", err)
	}
}

func TestCorruptObject(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{})
	src := publish(t, s, 2<<20, core.PublishOptions{})
	keys := objects(t, w, s)
	if len(keys) != 1 {
		t.Fatalf("objects %v", keys)
	}
	mc := w.Client(t)
	obj, err := mc.GetObject(context.Background(), testBucket, keys[0], minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	bad[len(src.want[0])/2] ^= 0x40 // in the first piece of item 0
	if _, err := mc.PutObject(context.Background(), testBucket, keys[0], bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	err = src.fetch(receiver(t, "r", hostdl.ClientOptions{Retries: 1}))
	if core.KindOf(err) != core.KindChecksum {
		t.Fatalf("err %v, want checksum", err)
	}
}

// The store goes away while a receiver downloads: the receiver falls
// back to the origin when it still serves the batch, and fails with a
// clear error naming the store when it does not.
func TestStoreGoneMidDownload(t *testing.T) {
	for _, originUp := range []bool{true, false} {
		name := map[bool]string{true: "origin-up", false: "origin-gone"}[originUp]
		t.Run(name, func(t *testing.T) {
			w := startWeed(t)
			s := newStore(t, w, Options{})
			src := publish(t, s, 40<<20, core.PublishOptions{Receivers: 1}) // 3 ranges of at most 16 MiB
			var once sync.Once
			var r *hostdl.Host
			r = receiver(t, "r", hostdl.ClientOptions{
				Concurrency: 1, Retries: 1,
				Progress: func(_ uuid.UUID, done, _ int64) {
					if done > 0 {
						once.Do(func() {
							r.Client().CloseIdleConnections()
							if err := w.Stop(); err != nil {
								t.Error(err)
							}
							if !originUp {
								src.h.Close()
							}
						})
					}
				},
			})
			err := src.fetch(r)
			if originUp {
				if err != nil {
					t.Fatalf("with the origin up: %v, want the bytes from the origin", err)
				}
				if src.h.Stats().BytesServed == 0 {
					t.Fatal("the origin served nothing: the store did not go away mid-download")
				}
				return
			}
			if core.KindOf(err) != core.KindUnavailable || !strings.Contains(err.Error(), "from the object store "+strings.TrimPrefix(w.Endpoint, "http://")) {
				t.Fatalf("err %v, want unavailable, naming the object store", err)
			}
		})
	}
}

func TestDeletedAtTheEnd(t *testing.T) {
	w := sharedWeed(t)
	for _, end := range []string{"aborted", "timed out", "store closed"} {
		t.Run(end, func(t *testing.T) {
			s := newStore(t, w, Options{})
			o := core.PublishOptions{}
			if end == "timed out" {
				o.Timeout = 500 * time.Millisecond
			}
			src := publish(t, s, 1<<20, o)
			if keys := objects(t, w, s); len(keys) != 1 {
				t.Fatalf("objects %v", keys)
			}
			switch end {
			case "aborted":
				src.tx.Abort()
			case "timed out":
				select {
				case <-src.tx.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the transaction did not time out")
				}
			case "store closed":
				s.Close()
			}
			waitEmpty(t, w, s)
		})
	}
}

// A source that crashed leaves its folders; Sweep removes those whose
// expiry passed (objects and unfinished multipart uploads) and nothing
// else.
func TestSweep(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{})
	mc := w.Client(t)
	ctx := context.Background()
	now := time.Now()
	dead := s.folder(now.Add(-time.Minute), uuid.New())
	live := s.folder(now.Add(time.Hour), uuid.New())
	foreign := s.o.Prefix + "/notours/batch"
	for _, k := range []string{dead + objectName, live + objectName, foreign} {
		if _, err := mc.PutObject(ctx, testBucket, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An upload the crash cut short.
	mcore := minio.Core{Client: mc}
	if _, err := mcore.NewMultipartUpload(ctx, testBucket, dead+"partial", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("Sweep: %d %v, want 1 folder", n, err)
	}
	keys := objects(t, w, s)
	if strings.Join(keys, " ") != strings.Join([]string{live + objectName, foreign}, " ") && strings.Join(keys, " ") != strings.Join([]string{foreign, live + objectName}, " ") {
		t.Fatalf("after the sweep: %v, want the live folder and the foreign object", keys)
	}
	for up := range mc.ListIncompleteUploads(ctx, testBucket, dead, true) {
		t.Errorf("unfinished upload left: %v %v", up.Key, up.Err)
	}
}

func TestOptions(t *testing.T) {
	good := Options{Endpoint: "http://127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	for name, o := range map[string]Options{
		"no endpoint":   {Bucket: "b", AccessKey: "a", SecretKey: "s"},
		"endpoint path": {Endpoint: "http://h/x", Bucket: "b", AccessKey: "a", SecretKey: "s"},
		"no bucket":     {Endpoint: good.Endpoint, AccessKey: "a", SecretKey: "s"},
		"no keys":       {Endpoint: good.Endpoint, Bucket: "b"},
		"small part":    {Endpoint: good.Endpoint, Bucket: "b", AccessKey: "a", SecretKey: "s", PartSize: 1 << 20},
		"long expiry":   {Endpoint: good.Endpoint, Bucket: "b", AccessKey: "a", SecretKey: "s", Expiry: 8 * 24 * time.Hour},
	} {
		if _, err := New(o); core.KindOf(err) != core.KindInvalid || !strings.HasPrefix(err.Error(), "s3store: ") {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

// A caching relay forwards a message whose batch an object store holds
// without holding it: the store serves every receiver itself.
func TestRelayForwardsObjectHolder(t *testing.T) {
	w := sharedWeed(t)
	s := newStore(t, w, Options{})
	src := publish(t, s, 1<<20, core.PublishOptions{Receivers: 1})
	rl, err := hostdl.NewRelay(hostdl.RelayOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	before := src.holder(t)
	out, err := rl.Forward(src.msg)
	if err != nil {
		t.Fatal(err)
	}
	src.msg = out
	if got := src.holder(t); got != before {
		t.Fatalf("the relay re-pointed the batch at %q", got)
	}
	if err := src.fetch(receiver(t, "r", hostdl.ClientOptions{})); err != nil {
		t.Fatal(err)
	}
	if st := rl.Stats(); st.Batches != 0 || st.UpstreamBytes != 0 {
		t.Fatalf("relay stats %+v, want nothing held", st)
	}
}

// The object's layout, read at any offset and in any split, is each
// item's frames: pieces with their CRC-32C, item after item.
func TestBatchReaderFrames(t *testing.T) {
	h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	enc, _ := h.EncMode(core.EncOptions{RefThreshold: 1})
	r := rand.New(rand.NewPCG(1, 2))
	var arrays []any
	for _, n := range []int{3<<20 + 5, 1 << 20, 17} {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		a, _ := core.ArrayOf([]int{n}, d)
		arrays = append(arrays, a)
	}
	m, err := enc.Encode(arrays)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Batch()
	ps := int64(b.Manifest().BlockSize)
	var want []byte
	for _, it := range b.Items {
		for off := int64(0); off < int64(len(it.Data)); off += ps {
			piece := it.Data[off:min(off+ps, int64(len(it.Data)))]
			want = append(want, piece...)
			want = binary.BigEndian.AppendUint32(want, core.Checksum(piece))
		}
	}
	br, err := newBatchReader(b)
	if err != nil {
		t.Fatal(err)
	}
	if br.size != int64(len(want)) {
		t.Fatalf("size %d, want %d", br.size, len(want))
	}
	all, err := io.ReadAll(br)
	if err != nil || !bytes.Equal(all, want) {
		t.Fatalf("a sequential read differs (%v)", err)
	}
	for range 200 {
		off := r.Int64N(int64(len(want)))
		p := make([]byte, 1+r.IntN(int(ps)+9))
		n, err := br.ReadAt(p, off)
		wn := min(len(p), len(want)-int(off))
		if n != wn || !bytes.Equal(p[:n], want[off:int(off)+wn]) || (n < len(p)) != (err == io.EOF) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d bytes", len(p), off, n, err, wn)
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SK")
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	o, err := ParseURL("s3://models/run-7/")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Endpoint: "https://s3.eu-west-3.amazonaws.com", Bucket: "models", Prefix: "run-7", Region: "eu-west-3", AccessKey: "AK", SecretKey: "SK"}
	if o != want {
		t.Fatalf("%+v, want %+v", o, want)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
	if o, _ := ParseURL("s3://b"); o.Endpoint != "http://127.0.0.1:8333" || o.Prefix != "" {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []string{"http://b/p", "s3:///p", "s3://b/p?x=1", "models"} {
		if _, err := ParseURL(bad); core.KindOf(err) != core.KindInvalid {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}
