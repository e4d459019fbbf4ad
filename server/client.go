package server

import (
	"context"
	"net"

	"google.golang.org/grpc/peer"
)

// Fairness keys (engine.Request.Client). The engine admits waiting
// requests round-robin across these keys, so they decide who counts as one
// client. An HTTP request is its OpenAI "user" field when given, else its
// remote IP address (all connections of one host are one client; behind a
// reverse proxy every request shares the proxy's address, so clients
// there should send "user"). A gRPC call is its peer's IP address. The
// prefixes keep a "user" from posing as an address.

// httpClientKey returns the fairness key of an HTTP request.
func httpClientKey(user, remoteAddr string) string {
	if user != "" {
		return "user:" + user
	}
	return "addr:" + hostOf(remoteAddr)
}

// grpcClientKey returns the fairness key of a gRPC call.
func grpcClientKey(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "addr:" + hostOf(p.Addr.String())
	}
	return "addr:"
}

// hostOf strips the port from a host:port address.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
