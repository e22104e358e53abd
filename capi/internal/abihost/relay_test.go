package abihost

import (
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// TestRelayFansOut: two receivers behind a relay get the batch, the
// origin serves it once, and the receipts count at the origin under the
// receivers' names.
func TestRelayFansOut(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "origin"})
	a, _ := addHost(t, tab, HostOptions{Name: "a"})
	b, _ := addHost(t, tab, HostOptions{Name: "b"})
	r, err := NewRelay(RelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rh := tab.Add(r)
	t.Cleanup(func() { _ = tab.Release(rh) })
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{Names: []string{"a", "b"}})
	fwd, err := r.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	mustReceive(t, tab, a, fwd, want)
	mustReceive(t, tab, b, fwd, want)
	out, err := use[*Tx](t, tab, th).Wait(int64(30 * time.Second))
	if err != nil || out.State != core.StateCompleted {
		t.Fatalf("outcome %v, %v", out.State, err)
	}
	if got := receiverIDs(use[*Tx](t, tab, th)); len(got) != 2 {
		t.Fatalf("receivers at the origin %v, want a and b", got)
	}
	st := r.Stats()
	if served := use[*Host](t, tab, src).Stats().BytesServed; served != st.UpstreamBytes || served > 2<<20 {
		t.Fatalf("origin served %d bytes, the relay fetched %d: want one copy (2 MiB)", served, st.UpstreamBytes)
	}
	if _, err := r.Forward([]byte{0xff}); err == nil {
		t.Fatal("a malformed message forwarded")
	}
	if _, err := NewRelay(RelayOptions{ClientAuth: true}); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("client auth without files: %v", err)
	}
	if _, err := NewRelay(RelayOptions{Listen: "0.0.0.0:0", Advertise: "relay.example"}); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a cleartext relay beyond loopback: %v", err)
	}
}
