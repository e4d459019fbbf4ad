package server

import (
	"context"
	"net"

	"google.golang.org/grpc/peer"
)

// Fairness keys (engine.Request.Client). The engine admits waiting
// requests round-robin across these keys, so they decide who counts as one
// client. An HTTP request is its OpenAI "user" field when given, else its
// API key (see auth.go) when the server requires keys, else its
// remote IP address (all connections of one host are one client; behind a
// reverse proxy every request shares the proxy's address, so clients
// there should send "user"). A gRPC call is its peer's IP address. The
// prefixes keep a "user" from posing as an address.

// httpClientKey returns the fairness key of an HTTP request; key is the
// client id of its API key ("" without auth).
func httpClientKey(user, key, remoteAddr string) string {
	if user != "" {
		return "user:" + user
	}
	if key != "" {
		return key
	}
	return "addr:" + hostOf(remoteAddr)
}

// grpcClientKey returns the fairness key of a gRPC call: its API key's
// client id, else its peer's address.
func grpcClientKey(ctx context.Context) string {
	if k := keyClient(ctx); k != "" {
		return k
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "addr:" + hostOf(p.Addr.String())
	}
	return "addr:"
}

// grpcPeer is a gRPC call's peer address without its port, "" if unknown.
func grpcPeer(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return hostOf(p.Addr.String())
	}
	return ""
}

// hostOf strips the port from a host:port address.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
