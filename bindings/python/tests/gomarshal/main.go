// Command gomarshal encodes values described in JSON with the Go core, so
// that the Python tests can check that the package writes, for the same
// values, the very bytes Go writes (test_skeleton.py). It reads one JSON
// value per line on stdin and writes, per line, the message in hex or
// "error <kind>: <text>".
//
// A value is {"t": TYPE, ...}: null; bool {"v"}; int {"v": decimal};
// float {"w": 16|32|64, "bits": big-endian hex}; text {"v"}; bytes {"hex"};
// list {"items"}; map {"entries": [[text, value], ...]}; pairs {"pairs":
// [[key, value], ...]}; array {"dtype", "shape", "order": "C"|"F", "hex"};
// object {"name", "data"}; ref {"source", "ref_id", "token",
// "batch_items", "batch_bytes", "item", "dtype", "shape", "order": 0|1}.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"

	"github.com/viacodec/viacodec/core"
)

type node struct {
	T       string               `json:"t"`
	V       json.RawMessage      `json:"v"`
	W       int                  `json:"w"`
	Bits    string               `json:"bits"`
	Hex     string               `json:"hex"`
	Items   []node               `json:"items"`
	Entries [][2]json.RawMessage `json:"entries"`
	Pairs   [][2]node            `json:"pairs"`
	DType   string               `json:"dtype"`
	Shape   []int                `json:"shape"`
	Order   any                  `json:"order"`
	Name    string               `json:"name"`
	Data    *node                `json:"data"`
	Source  string               `json:"source"`
	RefID   string               `json:"ref_id"`
	Token   string               `json:"token"`
	NItems  int                  `json:"batch_items"`
	NBytes  int64                `json:"batch_bytes"`
	Item    int                  `json:"item"`
}

func value(n node) (any, error) {
	switch n.T {
	case "null":
		return nil, nil
	case "bool":
		var b bool
		err := json.Unmarshal(n.V, &b)
		return b, err
	case "int":
		var s string
		if err := json.Unmarshal(n.V, &s); err != nil {
			return nil, err
		}
		i, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("bad int %q", s)
		}
		return i, nil
	case "float":
		b, err := hex.DecodeString(n.Bits)
		if err != nil {
			return nil, err
		}
		switch n.W {
		case 16:
			return core.Float16(binary.BigEndian.Uint16(b)), nil
		case 32:
			return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case "text":
		var s string
		err := json.Unmarshal(n.V, &s)
		return s, err
	case "bytes":
		return hex.DecodeString(n.Hex)
	case "list":
		out := make([]any, len(n.Items))
		for i, x := range n.Items {
			v, err := value(x)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case "map":
		out := map[string]any{}
		for _, e := range n.Entries {
			var k string
			var x node
			if err := json.Unmarshal(e[0], &k); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(e[1], &x); err != nil {
				return nil, err
			}
			v, err := value(x)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case "pairs":
		out := core.Map{}
		for _, p := range n.Pairs {
			k, err := value(p[0])
			if err != nil {
				return nil, err
			}
			v, err := value(p[1])
			if err != nil {
				return nil, err
			}
			out = append(out, core.Pair{Key: k, Value: v})
		}
		return out, nil
	case "array":
		dt, err := core.ParseDType(n.DType)
		if err != nil {
			return nil, err
		}
		data, err := hex.DecodeString(n.Hex)
		if err != nil {
			return nil, err
		}
		order := core.RowMajor
		if n.Order == "F" {
			order = core.ColumnMajor
		}
		return core.NewArray(dt, n.Shape, order, data)
	case "object":
		if n.Data == nil {
			return nil, fmt.Errorf("object without data")
		}
		d, err := value(*n.Data)
		return core.Object{Name: n.Name, Data: d}, err
	case "ref":
		dt, err := core.ParseDType(n.DType)
		if err != nil {
			return nil, err
		}
		l := &core.LazyRef{Batch: core.BatchRef{Source: n.Source, Items: n.NItems, Bytes: n.NBytes}, Item: n.Item, DType: dt, Shape: n.Shape}
		if o, ok := n.Order.(float64); ok && o == 1 {
			l.Order = core.ColumnMajor
		}
		id, err := hex.DecodeString(n.RefID)
		if err != nil || len(id) != 16 {
			return nil, fmt.Errorf("bad ref_id %q", n.RefID)
		}
		tok, err := hex.DecodeString(n.Token)
		if err != nil || len(tok) != core.TokenSize {
			return nil, fmt.Errorf("bad token %q", n.Token)
		}
		copy(l.Batch.RefID[:], id)
		copy(l.Batch.Token[:], tok)
		return l, nil
	}
	return nil, fmt.Errorf("unknown type %q", n.T)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<30)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	mode, err := core.EncOptions{MaxDepth: core.MaxDepthLimit}.EncMode()
	if err != nil {
		panic(err)
	}
	for in.Scan() {
		var n node
		if err := json.Unmarshal(in.Bytes(), &n); err != nil {
			fmt.Fprintf(out, "error json: %v\n", err)
			continue
		}
		v, err := value(n)
		if err == nil {
			var msg []byte
			if msg, err = mode.Marshal(v); err == nil {
				fmt.Fprintf(out, "%x\n", msg)
				continue
			}
		}
		fmt.Fprintf(out, "error %v: %v\n", core.KindOf(err), err)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(out, "error input: %v\n", err)
	}
}
