package layout

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

// cutEverywhere checks that read refuses every proper prefix of b with
// KindInvalid.
func cutEverywhere(t *testing.T, what string, b []byte, read func([]byte) error) {
	t.Helper()
	for i := range len(b) {
		if err := read(b[:i]); core.KindOf(err) != core.KindInvalid {
			t.Fatalf("%s cut at %d of %d: %v", what, i, len(b), err)
		}
	}
	if err := read(append(slices.Clone(b), 0)); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("%s with a trailing byte: %v", what, err)
	}
}

// TestEncodeHeld: held slots cross a parcel as descriptions and encode by
// reference as Externs, the batch's items naming their slots; the encoded
// layout carries the message, the batch and the slots.
func TestEncodeHeld(t *testing.T) {
	small, _ := core.ArrayOf(nil, []int8{1, 2, 3})
	skel := abitest.Skeleton(t, map[string]any{"w": core.SlotIndex(0), "small": core.SlotIndex(1), "v": core.SlotIndex(2), "w2": core.SlotIndex(0)})
	slots := []abi.Slot{
		{DType: int32(core.DTypeFloat32), Shape: []int64{4, 8}, Held: true},
		abi.SlotOf(small),
		{DType: int32(core.DTypeInt64), Order: int32(core.ColumnMajor), Shape: []int64{2, 3}, Held: true},
	}
	buf := make([]byte, ParcelSize(len(skel), slots))
	PutParcel(buf, skel, slots)
	gotSkel, got, err := ReadParcel(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Held || got[1].Held || !got[2].Held || len(got[0].Data) != 0 {
		t.Fatalf("slots %+v", got)
	}
	mode, err := core.EncOptions{ByRef: true, RefThreshold: 16, Source: "http://127.0.0.1:1"}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.Encode(gotSkel, got, mode)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := AppendEncoded(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ReadEncoded(layout)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Message, m.Bytes()) || e.Batch == nil || *e.Batch != m.Batch().Ref ||
		!slices.Equal(e.Handles, []int64{2, 0}) || e.Batch.Items != 2 || e.Batch.Bytes != 128+48 {
		t.Fatalf("encoded %+v, handles %v", e.Batch, e.Handles)
	}
	cutEverywhere(t, "encoded", layout, func(b []byte) error { _, err := ReadEncoded(b); return err })

	// No reference: no batch.
	m, err = abi.Encode(abitest.Skeleton(t, []any{core.SlotIndex(0)}), []abi.Slot{abi.SlotOf(small)}, mode)
	if err != nil {
		t.Fatal(err)
	}
	layout, _ = AppendEncoded(nil, m)
	if e, err := ReadEncoded(layout); err != nil || e.Batch != nil || len(e.Handles) != 0 || !bytes.Equal(e.Message, m.Bytes()) {
		t.Fatalf("inline: %+v, %v", e, err)
	}
	// An array of this memory by reference has no slot to name.
	big, _ := core.ArrayOf(nil, make([]float64, 4))
	m, err = abi.Encode(abitest.Skeleton(t, []any{core.SlotIndex(0)}), []abi.Slot{abi.SlotOf(big)}, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendEncoded(nil, m); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("an array in memory by reference: %v", err)
	}

	one := abitest.Skeleton(t, []any{core.SlotIndex(0)})
	for _, c := range []struct {
		name string
		slot abi.Slot
		mode *core.EncMode
		kind core.Kind
	}{
		{"held inline", slots[0], abitest.PlainMode(t), core.KindInvalid},
		{"held with data", abi.Slot{Data: []byte{1}, DType: int32(core.DTypeInt8), Shape: []int64{1}, Held: true}, mode, core.KindInvalid},
		{"held bytes", abi.Slot{DType: abi.SlotBytes, Held: true}, mode, core.KindInvalid},
		{"held bad dtype", abi.Slot{DType: 99, Held: true}, mode, core.KindMismatch},
		{"held bad order", abi.Slot{DType: int32(core.DTypeInt8), Order: 7, Held: true}, mode, core.KindMismatch},
		{"held negative dimension", abi.Slot{DType: int32(core.DTypeInt8), Shape: []int64{-1}, Held: true}, mode, core.KindMismatch},
	} {
		_, err := abi.Encode(one, []abi.Slot{c.slot}, c.mode)
		abitest.WantKind(t, c.name, err, c.kind)
	}
	// A parcel flag the reader does not know, or held data, is refused.
	for _, flags := range []uint32{2, ParcelHeld} {
		s := []abi.Slot{{Data: []byte{1}, DType: int32(core.DTypeInt8), Shape: []int64{1}}}
		p := make([]byte, ParcelSize(0, s))
		PutParcel(p, nil, s)
		p[24+28] = byte(flags)
		if _, _, err := ReadParcel(p); core.KindOf(err) != core.KindInvalid {
			t.Errorf("flags %d: %v", flags, err)
		}
	}
}

func TestTableRequestLayout(t *testing.T) {
	q := &TableRequest{RefID: uuid.New(), Token: bytes.Repeat([]byte{7}, 32), Receiver: "agent-1", Hop: "relay-1", Nonce: "00ff", Item: 3, Off: 1 << 40, N: -1}
	b := AppendTableRequest(nil, q)
	got, err := ReadTableRequest(b)
	if err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("%+v, %v; want %+v", got, err, q)
	}
	empty := AppendTableRequest(nil, &TableRequest{})
	if got, err := ReadTableRequest(empty); err != nil || len(got.Token) != 0 || got.Receiver != "" {
		t.Fatalf("empty request: %+v, %v", got, err)
	}
	cutEverywhere(t, "table request", b, func(b []byte) error { _, err := ReadTableRequest(b); return err })
}

func TestPublishLayout(t *testing.T) {
	b := &core.Batch{Ref: core.BatchRef{Source: "http://127.0.0.1:9", RefID: uuid.New(), Items: 2, Bytes: 56}, Items: []core.Item{
		{ID: 0, DType: core.DTypeFloat32, Shape: []int{2, 3}, Order: core.ColumnMajor, Data: make([]byte, 24)},
		{ID: 1, DType: core.DTypeInt64, Shape: []int{4}, Data: make([]byte, 32)},
		{ID: 2, DType: core.DTypeUint8, Shape: []int{0, 1 << 31, 3}, Data: []byte{}}, // a dimension past int32
	}}
	b.Ref.Items = 3
	b.Ref.Token[5] = 1
	o := core.PublishOptions{Names: []string{"a", "receiver-b"}, Receivers: 1, MaxReceivers: 9, Quorum: 1, Timeout: time.Minute}
	layout := AppendPublish(nil, b, &o)
	got, gotOpts, err := ReadPublish(layout)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != b.Ref || !reflect.DeepEqual(gotOpts, o) || len(got.Items) != 3 {
		t.Fatalf("%+v %+v", got.Ref, gotOpts)
	}
	for i, it := range got.Items {
		w := b.Items[i]
		if it.ID != i || it.DType != w.DType || it.Order != w.Order || !slices.Equal(it.Shape, w.Shape) ||
			it.Data != nil || it.Extern == nil || it.Extern.Handle != int64(i) || it.Size() != int64(len(w.Data)) {
			t.Fatalf("item %d: %+v", i, it)
		}
	}
	cutEverywhere(t, "publish", layout, func(b []byte) error { _, _, err := ReadPublish(b); return err })
	bad := &core.Batch{Items: []core.Item{{DType: core.DTypeInvalid}}}
	if _, _, err := ReadPublish(AppendPublish(nil, bad, &core.PublishOptions{})); core.KindOf(err) != core.KindMismatch {
		t.Fatalf("an item of no dtype: %v", err)
	}
	neg := &core.Batch{Items: []core.Item{{DType: core.DTypeInt8, Shape: []int{-2}}}}
	if _, _, err := ReadPublish(AppendPublish(nil, neg, &core.PublishOptions{})); core.KindOf(err) != core.KindMismatch {
		t.Fatalf("a negative dimension: %v", err)
	}
}

func TestTableAnswerLayout(t *testing.T) {
	at := time.Unix(1_700_000_000, 123)
	rs := []core.ReceiverStatus{
		{ID: "a", State: core.ReceiverConfirmed, Bytes: 400, FirstSeen: at, LastSeen: at.Add(time.Second)},
		{ID: "receiver-with-a-longer-id", State: core.ReceiverFailed, FirstSeen: at, LastSeen: at},
	}
	a := &TableAnswer{
		Values: [4]int64{1, -2, 3, 1 << 50},
		Text:   "nonce-text",
		Status: &TxOutcome{RefID: uuid.New(), Outcome: core.Outcome{State: core.StateOpen, Receivers: rs[:1]}},
		Ended:  []TxOutcome{{RefID: uuid.New(), Outcome: core.Outcome{State: core.StateQuorumMet, Receivers: rs}}, {RefID: uuid.New()}},
	}
	b := AppendTableAnswer(nil, a)
	got, err := ReadTableAnswer(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Values != a.Values || got.Text != a.Text || len(got.Ended) != 2 || got.Status == nil ||
		got.Status.RefID != a.Status.RefID || got.Ended[1].RefID != a.Ended[1].RefID || len(got.Ended[1].Outcome.Receivers) != 0 {
		t.Fatalf("%+v", got)
	}
	for i, r := range got.Ended[0].Outcome.Receivers {
		w := rs[i]
		if r.ID != w.ID || r.State != w.State || r.Bytes != w.Bytes || !r.FirstSeen.Equal(w.FirstSeen) || !r.LastSeen.Equal(w.LastSeen) {
			t.Fatalf("receiver %d: %+v, want %+v", i, r, w)
		}
	}
	cutEverywhere(t, "table answer", b, func(b []byte) error { _, err := ReadTableAnswer(b); return err })
	if got, err := ReadTableAnswer(AppendTableAnswer(nil, &TableAnswer{})); err != nil || got.Status != nil || len(got.Ended) != 0 {
		t.Fatalf("empty answer: %+v, %v", got, err)
	}
	bad := slices.Clone(b)
	bad[48+16+16] = 9 // the status's state
	if _, err := ReadTableAnswer(bad); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("an unknown state: %v", err)
	}
}
