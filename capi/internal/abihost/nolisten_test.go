package abihost

// A host that listens on nothing: it publishes only by upload, to a
// holder over loopback, and learns the outcome from there.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

func TestNoListenUploads(t *testing.T) {
	tab := abi.NewTable()
	holder, hold := addHost(t, tab, HostOptions{Name: "server"})
	client, cl := addHost(t, tab, HostOptions{Name: "site-1", NoListen: true})
	if cl.Listening() || cl.Source() != "" || !hold.Listening() {
		t.Fatalf("NoListen host: listening %v, source %q", cl.Listening(), cl.Source())
	}
	skel, slots, want := refValue(t)

	// Publishing on its own would name a source nobody reaches.
	if _, _, err := cl.Encode(context.Background(), skel, slots, PublishOptions{}); core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "listens on nothing") {
		t.Fatalf("Encode without a listener or a grant: %v, want KindInvalid naming the upload", err)
	}
	if _, err := cl.GrantUpload(1<<20, 0); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a host without a listener granted an upload: %v", err)
	}
	// Inline only: nothing to publish, no grant needed.
	if m, tx, err := cl.Encode(context.Background(), skel, slots, PublishOptions{RefThreshold: 1 << 40}); err != nil || tx != nil || m == nil {
		t.Fatalf("inline encode on a host without a listener: %v, tx %v", err, tx)
	}

	grant, err := hold.GrantUpload(4<<20, int64(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	msg, th := publish(t, tab, client, skel, slots, PublishOptions{Receivers: 1, Upload: grant})
	mustReceive(t, tab, holder, msg, want) // locally, from the holder's table
	out, err := use[*Tx](t, tab, th).Wait(int64(30 * time.Second))
	if err != nil || out.State != core.StateCompleted || len(out.Receivers) != 1 || out.Receivers[0].ID != "server" {
		t.Fatalf("outcome %v %v, %v: want completed by server", out.State, out.Receivers, err)
	}
}

func TestNoListenOptionsRefused(t *testing.T) {
	for _, o := range []HostOptions{
		{NoListen: true, Listen: "127.0.0.1:0"},
		{NoListen: true, Advertise: "site-1.example"},
	} {
		if err := CheckHostOptions(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("%+v: %v, want KindInvalid", o, err)
		}
		if _, err := NewHost(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("NewHost(%+v): %v, want KindInvalid", o, err)
		}
	}
}

// TestRequestTimeoutBoundsAStart: a download from a source that never
// answers fails after Retries+1 requests of RequestTimeoutNs, not after
// hostdl's defaults (5 of 30 s).
func TestRequestTimeoutBoundsAStart(t *testing.T) {
	tab := abi.NewTable()
	frozen, _ := addHost(t, tab, HostOptions{Name: "frozen", Advertise: frozenSource(t)})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent", RequestTimeoutNs: int64(200 * time.Millisecond), Retries: 1})
	skel, slots, _ := refValue(t)
	msg, _ := publish(t, tab, frozen, skel, slots, PublishOptions{})
	abitest.Within(t, 20*time.Second, "a download from a frozen source", func() {
		_, err := receive(tab, agent, msg)
		if k := core.KindOf(err); k != core.KindTimeout && k != core.KindUnavailable {
			t.Fatalf("download from a frozen source: %v, want a timeout", err)
		}
	})
	for _, o := range []HostOptions{{RequestTimeoutNs: -1}, {Retries: 101}, {Retries: 1 << 40}} {
		if err := CheckHostOptions(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("%+v: %v, want KindInvalid", o, err)
		}
	}
}
