package core

import (
	"bytes"
	"errors"
	"testing"
)

func TestRehold(t *testing.T) {
	b := goldenBatch("http://origin:1", 3, 2, 8)
	msg, err := Marshal(map[string]any{
		"round": 1,
		"w":     &LazyRef{Batch: b, Item: 1, DType: DTypeFloat32, Shape: []int{2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	held, err := pass.Rehold(msg, func(got BatchRef) (string, error) {
		if got != b {
			t.Errorf("hold got %v, want %v", got, b)
		}
		return "https://relay:2", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := pass.Decode(held)
	if err != nil {
		t.Fatal(err)
	}
	l := v.(map[string]any)["w"].(*LazyRef)
	want := b
	want.Holder = "https://relay:2"
	if l.Batch != want || l.Batch.Where() != "https://relay:2" {
		t.Fatalf("held batch %+v, want %+v", l.Batch, want)
	}
	// Re-encoding the lazy ref writes the holder again, byte for byte.
	again, err := Marshal(v)
	if err != nil || !bytes.Equal(again, held) {
		t.Fatalf("re-encoded %x (%v), want %x", again, err, held)
	}
	// Removing the holder gives the original message back.
	back, err := pass.Rehold(held, func(BatchRef) (string, error) { return "", nil })
	if err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("without holder %x (%v), want %x", back, err, msg)
	}
	stop := errors.New("stop")
	if _, err := pass.Rehold(msg, func(BatchRef) (string, error) { return "", stop }); !errors.Is(err, stop) {
		t.Fatalf("hold's error: got %v", err)
	}
	if _, err := pass.Rehold(msg[:len(msg)-1], func(BatchRef) (string, error) { return "x", nil }); KindOf(err) != KindSyntax {
		t.Fatalf("truncated message: got %v, want a syntax error", err)
	}
}

// A message encoded here, re-pointed with ReholdMessage, keeps its batch
// and writes what Rehold writes.
func TestReholdMessage(t *testing.T) {
	mode, err := EncOptions{ByRef: true, RefThreshold: 1, Source: "http://origin:1"}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mode.Encode(map[string]any{"w": []float32{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Batch() == nil {
		t.Fatal("no batch")
	}
	dm, err := DecOptions{}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	hold := func(BatchRef) (string, error) { return "https://relay:2", nil }
	got, err := dm.ReholdMessage(m, hold)
	if err != nil {
		t.Fatal(err)
	}
	want, err := dm.Rehold(m.Bytes(), hold)
	if err != nil {
		t.Fatal(err)
	}
	if got.Batch() != m.Batch() || got.Len() != len(want) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("ReholdMessage: batch %p (want %p), %x, want %x", got.Batch(), m.Batch(), got.Bytes(), want)
	}
	if _, err := dm.ReholdMessage(m, func(BatchRef) (string, error) { return "", errors.New("stop") }); err == nil {
		t.Fatal("hold's error was not returned")
	}
}
