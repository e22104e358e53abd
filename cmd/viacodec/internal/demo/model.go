package demo

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"

	"github.com/viacodec/viacodec/core"
)

// The demo's model is float32 tensors whose weights anyone can recompute
// (bindings/python/tests/test_demo.py does, with numpy): element i of
// tensor j is
//
//	u = splitmix64(j<<32 | i) >> 40                 (24 random bits)
//	w = (float32(u)·2⁻²⁴ − 0.5) · float32(0.04)      (each step in float32)
//
// An agent's training step moves every weight toward its target t:
//
//	w' = w + float32(lr · float32(t − w))           (each step in float32)
//
// and the server's average of n updates is ((u₁ + u₂) + … + uₙ) / n in
// float32, in the agents' order. Every agent kind computes these bit for
// bit alike (numpy rounds each float32 operation as Go does), so the
// server can check the average it downloads against the one it expects.

// tensor is one named array of the model and its elements.
type tensor struct {
	name string
	arr  *core.Array
	w    []float32 // arr's elements: they alias arr.Data
}

// model is the tensors in name order.
type model []tensor

// initialModel returns n tensors (at least 1) of size bytes in all.
func initialModel(size, n int) model {
	elems := max(size/4, n)
	m := make(model, 0, n)
	for j := range n {
		count := elems / n
		if j == n-1 {
			count += elems % n
		}
		w := make([]float32, count)
		for i := range w {
			u := splitmix64(uint64(j)<<32|uint64(i)) >> 40
			w[i] = (float32(u)*0x1p-24 - 0.5) * float32(0.04)
		}
		m = append(m, newTensor(fmt.Sprintf("layers.%d.weight", j), w))
	}
	slices.SortFunc(m, func(a, b tensor) int { return cmp.Compare(a.name, b.name) })
	return m
}

func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newTensor wraps w, shaped rows×1024 when it divides evenly.
func newTensor(name string, w []float32) tensor {
	shape := []int{len(w)}
	if len(w)%1024 == 0 && len(w) > 1024 {
		shape = []int{len(w) / 1024, 1024}
	}
	a, err := core.ArrayOf(shape, w)
	if err != nil {
		panic(err) // the shape holds len(w) elements
	}
	return tensor{name, a, w}
}

// modelOf reads a decoded map of name to float32 array.
func modelOf(v any) (model, error) {
	body, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("model is %T, not a map of name to array", v)
	}
	m := make(model, 0, len(body))
	for name, x := range body {
		a, ok := x.(*core.Array)
		if !ok {
			return nil, fmt.Errorf("model's %s is %T, not an array", name, x)
		}
		w, err := core.Elements[float32](a)
		if err != nil {
			return nil, fmt.Errorf("model's %s: %w", name, err)
		}
		m = append(m, tensor{name, a, w})
	}
	slices.SortFunc(m, func(a, b tensor) int { return cmp.Compare(a.name, b.name) })
	return m, nil
}

// body returns the map of name to array that a message carries.
func (m model) body() map[string]any {
	b := make(map[string]any, len(m))
	for _, t := range m {
		b[t.name] = t.arr
	}
	return b
}

// bytes returns the array bytes of m.
func (m model) bytes() int64 {
	var n int64
	for _, t := range m {
		n += int64(len(t.arr.Data))
	}
	return n
}

// digests returns the SHA-256 of each tensor's bytes, by name.
func (m model) digests() map[string][]byte {
	d := make(map[string][]byte, len(m))
	for _, t := range m {
		s := sha256.Sum256(t.arr.Data)
		d[t.name] = s[:]
	}
	return d
}

// digest is SHA-256 over every tensor's name and bytes, in name order.
func (m model) digest() []byte {
	h := sha256.New()
	for _, t := range m {
		h.Write([]byte(t.name))
		h.Write(t.arr.Data)
	}
	return h.Sum(nil)
}

// mean returns the mean of every weight.
func (m model) mean() float64 {
	var sum float64
	var n int
	for _, t := range m {
		for _, x := range t.w {
			sum += float64(x)
		}
		n += len(t.w)
	}
	return sum / float64(max(n, 1))
}

// trainInPlace takes the training step of an agent with target t on m's
// own memory (the agent owns the arrays it downloaded) and returns the
// update, which holds that memory.
func (m model) trainInPlace(lr, t float32) model {
	out := make(model, len(m))
	for k, x := range m {
		for i, w := range x.w {
			x.w[i] = step(w, lr, t)
		}
		// Wrap the elements again: Elements may have copied them.
		out[k] = newTensor(x.name, x.w)
	}
	return out
}

func step(w, lr, t float32) float32 { return w + float32(lr*float32(t-w)) }

// averager sums updates in the order they are added, then divides.
type averager struct {
	sum model
	n   int
}

// add adds u, which must have the tensors and shapes of the ones before.
// The sum starts in the first update's memory, which add takes over.
func (a *averager) add(u model) error {
	if a.n == 0 {
		a.sum = make(model, len(u))
		for k, t := range u {
			a.sum[k] = newTensor(t.name, t.w)
		}
		a.n = 1
		return nil
	}
	if len(u) != len(a.sum) {
		return fmt.Errorf("update has %d tensors, want %d", len(u), len(a.sum))
	}
	for k, t := range u {
		s := a.sum[k]
		if t.name != s.name || len(t.w) != len(s.w) {
			return fmt.Errorf("update's tensor %s (%d elements) does not match %s (%d)", t.name, len(t.w), s.name, len(s.w))
		}
		for i, x := range t.w {
			s.w[i] += x
		}
	}
	a.n++
	return nil
}

// mean divides the sum by the number of updates, in place, and returns it.
func (a *averager) mean() model {
	n := float32(a.n)
	for _, t := range a.sum {
		for i := range t.w {
			t.w[i] /= n
		}
	}
	return a.sum
}

// checkAverage compares avg, bit for bit, with the average of the updates
// of agents with the given targets, in their order, computed from m alone.
// It returns where they first differ, or "".
func (m model) checkAverage(avg model, lr float32, targets []float32) string {
	if len(avg) != len(m) {
		return fmt.Sprintf("%d tensors, want %d", len(avg), len(m))
	}
	n := float32(len(targets))
	for k, x := range m {
		a := avg[k]
		if a.name != x.name || len(a.w) != len(x.w) {
			return fmt.Sprintf("tensor %s (%d elements), want %s (%d)", a.name, len(a.w), x.name, len(x.w))
		}
		for i, w := range x.w {
			s := step(w, lr, targets[0])
			for _, t := range targets[1:] {
				s += step(w, lr, t)
			}
			if want := s / n; math.Float32bits(a.w[i]) != math.Float32bits(want) {
				return fmt.Sprintf("%s[%d] is %v, want %v", a.name, i, a.w[i], want)
			}
		}
	}
	return ""
}
