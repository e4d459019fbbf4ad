package server

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// Listener wraps ln for the HTTP server: at most maxConns connections are
// open at once (0: no limit), a further one waits in the kernel's accept
// queue until one closes, and the plain-text errors that net/http writes
// by itself before any handler runs (431 for a header larger than
// MaxHeaderBytes, 400 for a malformed request) become OpenAI JSON error
// bodies.
func Listener(ln net.Listener, maxConns int) net.Listener {
	l := &listener{Listener: ln}
	if maxConns > 0 {
		l.sem = make(chan struct{}, maxConns)
	}
	return l
}

type listener struct {
	net.Listener
	sem chan struct{} // one token per open connection; nil: no limit
}

// Accept waits for a free connection slot before accepting, so excess
// connections cost no file descriptor.
func (l *listener) Accept() (net.Conn, error) {
	if l.sem != nil {
		l.sem <- struct{}{}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if l.sem != nil {
			<-l.sem
		}
		return nil, err
	}
	return &conn{Conn: c, l: l}, nil
}

// conn gives its slot back once closed and rewrites net/http's own error
// replies.
type conn struct {
	net.Conn
	l    *listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.l.sem != nil {
			<-c.l.sem
		}
	})
	return err
}

// CloseWrite lets net/http half-close the connection after an error reply.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// goErrorHeaders is what net/http puts between the status line and the
// body of the replies it writes itself ("HTTP/1.1 431 Request Header
// Fields Too Large" + goErrorHeaders + the status text or a reason).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *conn) Write(b []byte) (int, error) {
	if jb, ok := jsonErrorReply(b); ok {
		if _, err := c.Conn.Write(jb); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// jsonErrorReply turns one of net/http's whole plain-text 4xx replies into
// the same status with an OpenAI error body. Anything else (every reply a
// handler writes goes through a buffer and has other headers) is left
// alone.
func jsonErrorReply(b []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 4"))
	if !ok {
		return nil, false
	}
	statusLine, body, ok := bytes.Cut(rest, []byte(goErrorHeaders))
	if !ok || len(statusLine) < 3 || bytes.ContainsAny(body, "\r\n") {
		return nil, false
	}
	code, err := strconv.Atoi("4" + string(statusLine[:2]))
	if err != nil {
		return nil, false
	}
	ae := &apiError{Status: code, Type: "invalid_request_error", Message: string(bytes.TrimSpace(body))}
	if code == http.StatusRequestHeaderFieldsTooLarge {
		ae.Code = "request_header_too_large"
		ae.Message = "the request header is larger than the server's limit"
	}
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 4")
	out.Write(statusLine)
	out.WriteString("\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
	jb, _ := json.Marshal(ae.body())
	out.Write(jb)
	out.WriteByte('\n')
	return out.Bytes(), true
}
