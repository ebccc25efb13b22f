package netpipe

import (
	"io"
	"net"
	"sync"
)

// Splice copies both ways until both directions end, passing half-closes
// on so request/response protocols that signal end-of-request by closing
// their write side keep working, then closes both.
func Splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	one := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		closeWrite(dst)
	}
	go one(a, b)
	go one(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// closeWrite half-closes c where it can. A connection without CloseWrite
// is closed: a yamux stream's Close is itself a half-close (it sends FIN
// and keeps reading until the peer's), and for anything else closing is
// the only way to say the data ended.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
