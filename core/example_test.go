package core_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/viacodec/viacodec/core"
)

func ExampleMarshal() {
	w, _ := core.ArrayOf([]int{2, 2}, []float32{1, 2, 3, 4})
	data, err := core.Marshal(map[string]any{"round": 3, "w": w})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes\n", len(data))
	// Output: 43 bytes
}

// A message with an array inline, there and back. (README.md, "Use from
// Go", shows this code.)
func ExampleUnmarshal() {
	w, err := core.ArrayOf([]int{2, 2}, []float32{1, 2, 3, 4})
	if err != nil {
		panic(err)
	}
	data, err := core.Marshal(map[string]any{"round": 3, "w": w})
	if err != nil {
		panic(err)
	}

	v, err := core.Unmarshal(data)
	if err != nil {
		panic(err)
	}
	msg := v.(map[string]any)
	a := msg["w"].(*core.Array)
	elems, err := core.Elements[float32](a)
	if err != nil {
		panic(err)
	}
	fmt.Println(msg["round"], a.DType, a.Shape, elems)
	// Output: 3 float32 [2 2] [1 2 3 4]
}

func ExampleDecOptions_DecMode() {
	dm, err := core.DecOptions{MaxDepth: 2, ZeroCopy: true}.DecMode()
	if err != nil {
		panic(err)
	}
	data, _ := core.Marshal([]any{[]any{[]any{"too deep"}}})
	_, err = dm.Decode(data)
	fmt.Println(errors.Is(err, core.ErrLimit))
	fmt.Println(err)
	// Output:
	// true
	// core: nesting exceeds MaxDepth 2 at offset 9
}

func ExampleEncMode_Encode() {
	big := make([]float64, 1<<20)
	a, _ := core.ArrayOf(nil, big)
	msg, err := core.EncOptions{}.EncMode()
	if err != nil {
		panic(err)
	}
	m, _ := msg.Encode(map[string]any{"w": a})
	// WriteTo streams the message: array bytes go straight from big to w.
	var w bytes.Buffer
	n, _ := m.WriteTo(&w)
	fmt.Println(n == int64(m.Len()), m.Len()-len(big)*8)
	// Output: true 27
}

func ExampleRegister() {
	type Point struct{ X, Y int64 }
	r := core.NewRegistry()
	_ = core.Register(r, "example.Point",
		func(p Point) (any, error) { return []any{p.X, p.Y}, nil },
		func(data any) (Point, error) {
			l, ok := data.([]any)
			if !ok || len(l) != 2 {
				return Point{}, errors.New("want [x, y]")
			}
			x, _ := l[0].(int64)
			y, _ := l[1].(int64)
			return Point{x, y}, nil
		})
	em, _ := core.EncOptions{Registry: r}.EncMode()
	dm, _ := core.DecOptions{Registry: r}.DecMode()
	data, _ := em.Marshal(Point{3, 4})
	v, _ := dm.Decode(data)
	fmt.Printf("%+v\n", v)

	// A decoder that does not know the name gets a generic object.
	v, _ = core.Unmarshal(data)
	fmt.Printf("%+v\n", v)
	// Output:
	// {X:3 Y:4}
	// {Name:example.Point Data:[3 4]}
}
