package core

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core/internal/cbor"
)

// descHex returns a batch descriptor in hex with the given parts.
func descHex(source string, idLen, tokLen int, items, nbytes uint64) string {
	b := cbor.AppendHead(nil, cbor.MajorArray, 5)
	b = cbor.AppendHead(b, cbor.MajorText, uint64(len(source)))
	b = append(b, source...)
	b = cbor.AppendHead(b, cbor.MajorBytes, uint64(idLen))
	b = append(b, make([]byte, idLen)...)
	b[len(b)-1] = byte(len(source)) // distinct ref ids per source
	b = cbor.AppendHead(b, cbor.MajorBytes, uint64(tokLen))
	b = append(b, make([]byte, tokLen)...)
	b = cbor.AppendHead(b, cbor.MajorUint, items)
	b = cbor.AppendHead(b, cbor.MajorUint, nbytes)
	return hex.EncodeToString(b)
}

// refMessage builds an envelope from a body and batch descriptors in hex.
func refMessage(t testing.TB, body string, descs ...string) []byte {
	s := "da56430000 83 01" + body + hex.EncodeToString(cbor.AppendHead(nil, cbor.MajorArray, uint64(len(descs))))
	for _, d := range descs {
		s += d
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedRefs(t *testing.T) {
	ok := descHex("s", 16, 32, 2, 16)
	// ref node: tag 0x56430002 [batch, item, dtype, shape, order]
	node := func(batch, item, dtype, shape, order string) string {
		return "da56430002 85" + batch + item + dtype + shape + order
	}
	f32 := "67 666c6f61743332" // "float32"
	tests := []struct {
		name string
		msg  []byte
		kind Kind
	}{
		{"batch index out of range", refMessage(t, node("01", "00", f32, "8102", "00"), ok), KindProtocol},
		{"item outside batch", refMessage(t, node("00", "02", f32, "8102", "00"), ok), KindProtocol},
		{"ref node of 4", refMessage(t, "da56430002 84 00 00"+f32+"8102", ok), KindProtocol},
		{"ref node not a list", refMessage(t, "da56430002 00", ok), KindProtocol},
		{"unknown dtype", refMessage(t, node("00", "00", "67 666c6f61743132", "8102", "00"), ok), KindMismatch},
		{"dtype not text", refMessage(t, node("00", "00", "01", "8102", "00"), ok), KindProtocol},
		{"order 2", refMessage(t, node("00", "00", f32, "8102", "02"), ok), KindProtocol},
		{"shape overflows", refMessage(t, node("00", "00", f32, "82 1b4000000000000000 1b4000000000000000", "00"), ok), KindMismatch},
		{"shape not a list", refMessage(t, node("00", "00", f32, "02", "00"), ok), KindProtocol},
		{"two nodes disagree", refMessage(t, "82"+node("00", "00", f32, "8102", "00")+node("00", "00", f32, "8103", "00"), ok), KindMismatch},
		{"descriptor of 4", refMessage(t, "00", "84 6173 40 40 00"), KindProtocol},
		{"ref id of 15 bytes", refMessage(t, "00", descHex("s", 15, 32, 1, 1)), KindProtocol},
		{"token of 31 bytes", refMessage(t, "00", descHex("s", 16, 31, 1, 1)), KindProtocol},
		{"items beyond int32", refMessage(t, "00", descHex("s", 16, 32, 1<<40, 1)), KindProtocol},
		{"bytes beyond int64", refMessage(t, "00", descHex("s", 16, 32, 1, 1<<63)), KindProtocol},
		{"duplicate ref ids", refMessage(t, "00", ok, ok), KindProtocol},
		{"no fetcher", refMessage(t, node("00", "00", f32, "8102", "00"), ok), KindInvalid},
		{"source not text", refMessage(t, "00", "85 01"+strings.Repeat("00", 4)), KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := passThrough
			if tt.name == "no fetcher" {
				mode = defaultDecMode
			}
			v, err := mode.Decode(tt.msg)
			if KindOf(err) != tt.kind || v != nil {
				t.Fatalf("got %v, %v (kind %v); want kind %v", v, err, KindOf(err), tt.kind)
			}
		})
	}
}

// TestDownloadErrors covers what can go wrong between a valid message and
// its source: each failure is typed and the decode returns no value.
func TestDownloadErrors(t *testing.T) {
	src := newNode(t, "server", nil)
	w := f32Array(t, 1000, 1)

	t.Run("message disagrees with manifest", func(t *testing.T) {
		data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		// Rewrite the ref node's dtype from float32 to "int32" (same size).
		s := strings.Replace(hex.EncodeToString(data), hex.EncodeToString([]byte("float32")), hex.EncodeToString([]byte("int32"))+"", 1)
		s = strings.Replace(s, "67"+hex.EncodeToString([]byte("int32")), "65"+hex.EncodeToString([]byte("int32")), 1)
		bad, _ := hex.DecodeString(s)
		v, err := receiverMode(t, "a", src).Decode(bad)
		if KindOf(err) != KindMismatch || v != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	})

	t.Run("missing item", func(t *testing.T) {
		data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		m, _ := passThrough.Decode(data)
		l := *m.([]any)[0].(*LazyRef)
		l.Batch.Items = 2 // claim an item the source does not have
		l.Item = 1
		msg, err := Marshal([]any{&l})
		if err != nil {
			t.Fatal(err)
		}
		v, err := receiverMode(t, "a", src).Decode(msg)
		if KindOf(err) != KindUnknownRef || v != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	})

	t.Run("source unavailable", func(t *testing.T) {
		data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		v, err := receiverMode(t, "a" /* knows no source */).Decode(data)
		if KindOf(err) != KindUnavailable || v != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	})

	t.Run("array bytes limit before allocating", func(t *testing.T) {
		data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		allocated := false
		m, _ := DecOptions{
			MaxArrayBytes: 3999,
			Fetcher:       &TableFetcher{Sources: map[string]*Table{"server": src.table}, Receiver: "a"},
			Allocator: func(DType, []int, Order, int64) ([]byte, error) {
				allocated = true
				return nil, nil
			},
		}.DecMode()
		if v, err := m.Decode(data); KindOf(err) != KindLimit || v != nil || allocated {
			t.Fatalf("got %v, %v, allocated %v", v, err, allocated)
		}
	})

	t.Run("allocator lies", func(t *testing.T) {
		data, _ := src.send(t, []any{w}, PublishOptions{Receivers: 1})
		m, _ := DecOptions{
			Fetcher:   &TableFetcher{Sources: map[string]*Table{"server": src.table}, Receiver: "a"},
			Allocator: func(DType, []int, Order, int64) ([]byte, error) { return make([]byte, 3), nil },
		}.DecMode()
		if v, err := m.Decode(data); KindOf(err) != KindInvalid || v != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	})
}
