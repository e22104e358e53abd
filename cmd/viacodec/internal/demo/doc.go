// Package demo is the federation simulator behind `viacodec demo`: an
// inline round trip of a synthetic model, then federated rounds on
// loopback between processes of their own (a server, a pass-through
// relay, Go, wasm and Python agents). The command's reusable tools
// (inspect, pack, serve, fetch) live in cmd/viacodec; what both use is in
// cmd/viacodec/internal/cli.
//
// Run is the demo; RunAgent and RunRelay are the hidden commands "agent"
// and "relay", which the demo starts as processes of the same binary.
//
//	demo.go    Run: flags, the inline round trip, the agents to start
//	round.go   the federated rounds: forwarding, checks, the hop table
//	sites.go   the round across sites: uploads, relay-1's cache, origin egress
//	procs.go   the demo's processes: start, frames in and out, stop
//	proto.go   the frames they exchange on their standard streams
//	agent.go   RunAgent and RunRelay: the agent and relay processes
//	model.go   the model anyone can recompute, training, averaging
//	memory.go  peak RSS of a process
package demo
