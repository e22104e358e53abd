package s3store

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/arraytest"
)

// benchSize is the model the benchmarks move: 64 MiB.
const benchSize = 64 << 20

// BenchmarkUpload: a source's upload (Store.Publish: multipart, 4 parts
// in parallel, CRCs computed on the way) against minio-go's own
// PutObject of the same bytes with the same parts, in one run.
func BenchmarkUpload(b *testing.B) {
	w := sharedWeed(b)
	s := newStore(b, w, Options{})
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 9}, benchSize/8)
	b.Run("viacodec", func(b *testing.B) {
		h, err := hostdl.NewHost(hostdl.HostOptions{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		a, _ := core.ArrayOf([]int{len(data)}, data)
		enc, _ := h.EncMode(core.EncOptions{})
		b.SetBytes(benchSize)
		for b.Loop() {
			m, err := enc.Encode(a)
			if err != nil {
				b.Fatal(err)
			}
			tx, _, err := s.Publish(context.Background(), h, m, core.PublishOptions{})
			if err != nil {
				b.Fatal(err)
			}
			tx.Abort()
		}
	})
	b.Run("minio-go", func(b *testing.B) {
		mc := w.Client(b)
		b.SetBytes(benchSize)
		for i := 0; b.Loop(); i++ {
			key := s.o.Prefix + "/minio/" + strconv.Itoa(i)
			if _, err := mc.PutObject(context.Background(), testBucket, key, bytes.NewReader(data), benchSize,
				minio.PutObjectOptions{PartSize: DefaultPartSize, NumThreads: DefaultParallel}); err != nil {
				b.Fatal(err)
			}
			mc.RemoveObject(context.Background(), testBucket, key, minio.RemoveObjectOptions{})
		}
	})
}

// BenchmarkDownload: a receiver's download of a batch the store holds
// (hostdl.Client: 4 ranges at once, each piece checked) against
// minio-go's GetObject of the same object, in one run: "viacodec" decodes
// into new memory and compares the bytes each time, "viacodec-kept-buffer"
// into a buffer it keeps, as minio-go's read does. The 32 receivers
// case reports the origin's egress as a multiple of the model: the
// upload (one copy) and the item bytes it served (none).
func BenchmarkDownload(b *testing.B) {
	w := sharedWeed(b)
	s := newStore(b, w, Options{})
	src := publish(b, s, benchSize, core.PublishOptions{Receivers: 1 << 20})
	b.Run("viacodec", func(b *testing.B) {
		r := receiver(b, "r", hostdl.ClientOptions{})
		b.SetBytes(benchSize)
		for b.Loop() {
			if err := src.fetch(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("viacodec-kept-buffer", func(b *testing.B) {
		// As minio-go's below: into a buffer faulted in once and kept (an
		// Allocator's), the bytes compared once after the timed loop.
		r := receiver(b, "kept", hostdl.ClientOptions{})
		buf := make([]byte, benchSize)
		for i := range buf {
			buf[i] = 1
		}
		var v any
		b.SetBytes(benchSize)
		for b.Loop() {
			dm, err := r.DecMode(core.DecOptions{Allocator: arraytest.Arena(buf)})
			if err != nil {
				b.Fatal(err)
			}
			if v, err = dm.Decode(src.msg); err != nil {
				b.Fatal(err)
			}
		}
		m := v.(map[string]any)
		for i, k := range []string{"a", "b"} {
			if !bytes.Equal(m[k].(*core.Array).Data, src.want[i]) {
				b.Fatalf("item %q: the bytes differ", k)
			}
		}
	})
	b.Run("minio-go", func(b *testing.B) {
		mc := w.Client(b)
		keys := objects(b, w, s)
		buf := make([]byte, 0, benchSize+benchSize/(1<<18))
		b.SetBytes(benchSize)
		for b.Loop() {
			o, err := mc.GetObject(context.Background(), testBucket, keys[0], minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.ReadFull(o, buf[:cap(buf)])
			o.Close()
			if err != nil && err != io.ErrUnexpectedEOF || n < benchSize {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("32-receivers", func(b *testing.B) {
		var rs []*hostdl.Host
		for i := range 32 {
			rs = append(rs, receiver(b, "many-"+strconv.Itoa(i), hostdl.ClientOptions{}))
		}
		served := src.h.Stats().BytesServed
		b.SetBytes(32 * benchSize)
		for b.Loop() {
			var wg sync.WaitGroup
			errs := make([]error, len(rs))
			for i, r := range rs {
				wg.Go(func() { errs[i] = src.fetch(r) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		upload := hostdl.FramedSize(benchSize*3/4, core.DefaultBlockSize) + hostdl.FramedSize(benchSize/4, core.DefaultBlockSize)
		b.ReportMetric(float64(upload+src.h.Stats().BytesServed-served)/benchSize, "origin-egress/model")
	})
}
