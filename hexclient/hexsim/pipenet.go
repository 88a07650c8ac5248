package hexsim

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// PipeNet is an in-memory network built on net.Pipe. Goroutines blocked on its
// connections are durably blocked, so clients and servers inside a testing/synctest
// bubble can do real HTTP without sockets.
type PipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewPipeNet returns an open in-memory network.
func NewPipeNet() *PipeNet {
	return &PipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Listener returns the network's only listener; its Close closes the network.
func (p *PipeNet) Listener() net.Listener { return pipeListener{p} }

// DialContext connects to the listener (network and addr are ignored); it blocks until
// the listener accepts, ctx is done or the network is closed.
func (p *PipeNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	case <-p.done:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: net.ErrClosed}
	}
}

// Close closes the network: Accept and DialContext fail from then on.
func (p *PipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Transport returns an HTTP transport that dials this network.
func (p *PipeNet) Transport() *http.Transport {
	return &http.Transport{DialContext: p.DialContext}
}

// Serve serves h on the network in a goroutine; stop closes the server, its
// connections and the network, and waits for the serving goroutine to return.
func (p *PipeNet) Serve(h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(p.Listener())
	}()
	return func() {
		srv.Close()
		p.Close()
		<-done
	}
}

type pipeListener struct{ p *PipeNet }

func (l pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.p.conns:
		return c, nil
	case <-l.p.done:
		return nil, net.ErrClosed
	}
}

func (l pipeListener) Close() error   { return l.p.Close() }
func (l pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "hexsim.pipe" }
