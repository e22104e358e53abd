// Package sitetest runs hostdl across sites: network namespaces of this
// machine (ip netns), joined by veth pairs on a bridge, the origin's
// uplink limited by a token bucket (tc tbf). An origin serves a model to
// 8 receivers in two sites that only dial out, first directly and then
// through a caching relay per site (hostdl.Relay), and the tests compare
// the origin's egress and the time until every receiver holds the model.
// Each node is a process of its own (this test binary, started again in
// its namespace with "ip netns exec"). It needs root and iproute2: where
// they are missing the tests fail, saying so, rather than pass.
//
// TestSites is the small version (go test); BenchmarkSites the full one
// (make bench), whose ratios docs/benchmarks.md records.
package sitetest
