package offload

import (
	"context"

	"github.com/viacodec/viacodec/core"
)

// Value is a decoded message whose arrays view a file.
type Value struct {
	// Body is the message's value; its *core.Array values view the file
	// read-only, until Close.
	Body any
	file *File
}

// Path returns the file's path.
func (v *Value) Path() string { return v.file.Path() }

// Keep makes Close leave the file, for others to open (safetensors'
// safe_open, torch, jax) or to decode again.
func (v *Value) Keep() { v.file.Keep() }

// Close unmaps the file and removes it unless it is kept. Body's arrays
// must not be used afterwards.
func (v *Value) Close() error { return v.file.Close() }

// Decode is m.Plan then Place.
func Decode(ctx context.Context, m *core.DecMode, msg []byte, o Options) (*Value, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	p, err := m.Plan(msg)
	if err != nil {
		return nil, err
	}
	return Place(ctx, m, p, o)
}

// Place is m.Place with every array of p, inline or referenced, landing
// in one safetensors file that o names, downloaded through m's Fetcher.
// On error the file is removed.
func Place(ctx context.Context, m *core.DecMode, p *core.Plan, o Options) (*Value, error) {
	f, err := Create(o, p.Slots, Names(p.Body, len(p.Slots)))
	if err != nil {
		return nil, err
	}
	body, err := m.PlaceIn(ctx, p, func(i int) (core.Destination, error) {
		return core.Destination{Mem: f.Slot(i), File: f.Writer(i)}, nil
	})
	if err == nil {
		err = f.Seal()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Value{Body: body, file: f}, nil
}
