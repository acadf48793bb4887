package onion

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// socksRequest is what the fake SOCKS server received on one connection.
type socksRequest struct {
	Methods    []byte
	User, Pass string
	HasAuth    bool
	Cmd        byte
	Atyp       byte
	Host       string     // for atyp 3
	IP         netip.Addr // for atyp 1 and 4
	Port       uint16
}

// socksAnswer is what the fake server answers to a request.
type socksAnswer struct {
	Code  ReplyCode
	Atyp  byte // 0: IPv4 zero address
	IP    netip.Addr
	Host  string
	Port  uint16
	Serve func(c net.Conn) // after a successful CONNECT; default: echo
}

// fakeSOCKS is an in-process SOCKS5 server on 127.0.0.1 that follows RFC
// 1928/1929 and tor's RESOLVE/RESOLVE_PTR extensions, with scripted
// answers.
type fakeSOCKS struct {
	t  testing.TB
	ln net.Listener

	// requireAuth makes the server choose username/password (and refuse
	// clients that do not offer it).
	requireAuth bool
	// rejectPass refuses this password with status 1.
	rejectPass string
	// answer decides the reply; default: success and echo.
	answer func(r socksRequest) socksAnswer

	mu    sync.Mutex
	reqs  []socksRequest
	conns int
	wg    sync.WaitGroup
	open  map[net.Conn]bool
}

func newFakeSOCKS(t testing.TB, network string) *fakeSOCKS {
	t.Helper()
	var ln net.Listener
	var err error
	if network == "unix" {
		ln, err = net.Listen("unix", shortSocketPath(t, "socks"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSOCKS{t: t, ln: ln, open: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *fakeSOCKS) dialer() *Dialer {
	return &Dialer{ProxyNetwork: s.ln.Addr().Network(), ProxyAddress: s.ln.Addr().String()}
}

func (s *fakeSOCKS) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeSOCKS) requests() []socksRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]socksRequest(nil), s.reqs...)
}

func (s *fakeSOCKS) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *fakeSOCKS) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.open[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
			}()
			s.handle(c)
		}()
	}
}

func (s *fakeSOCKS) handle(c net.Conn) {
	var r socksRequest
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 5 {
		return
	}
	r.Methods = make([]byte, b[1])
	if _, err := io.ReadFull(c, r.Methods); err != nil {
		return
	}
	has := func(m byte) bool {
		for _, x := range r.Methods {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case has(authPassword): // like tor (without PreferSOCKSNoAuth)
		c.Write([]byte{5, authPassword})
		r.HasAuth = true
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 1 {
			return
		}
		u := make([]byte, hdr[1])
		io.ReadFull(c, u)
		io.ReadFull(c, hdr[:1])
		p := make([]byte, hdr[0])
		if _, err := io.ReadFull(c, p); err != nil {
			return
		}
		r.User, r.Pass = string(u), string(p)
		if s.rejectPass != "" && r.Pass == s.rejectPass {
			c.Write([]byte{1, 1})
			s.record(r)
			return
		}
		c.Write([]byte{1, 0})
	case has(authNone) && !s.requireAuth:
		c.Write([]byte{5, authNone})
	default:
		c.Write([]byte{5, authNoAccept})
		s.record(r)
		return
	}
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 5 {
		return
	}
	r.Cmd, r.Atyp = hdr[1], hdr[3]
	switch r.Atyp {
	case atypIPv4, atypIPv6:
		ip := make([]byte, 4)
		if r.Atyp == atypIPv6 {
			ip = make([]byte, 16)
		}
		io.ReadFull(c, ip)
		r.IP, _ = netip.AddrFromSlice(ip)
	case atypDomain:
		io.ReadFull(c, hdr[:1])
		h := make([]byte, hdr[0])
		io.ReadFull(c, h)
		r.Host = string(h)
	default:
		return
	}
	if _, err := io.ReadFull(c, hdr[:2]); err != nil {
		return
	}
	r.Port = binary.BigEndian.Uint16(hdr[:2])
	s.record(r)

	a := socksAnswer{}
	if s.answer != nil {
		a = s.answer(r)
	}
	if a.Code == 0xFF { // scripted: hang up without answering
		return
	}
	rep := []byte{5, byte(a.Code), 0}
	switch {
	case a.Atyp == atypDomain:
		rep = append(rep, atypDomain, byte(len(a.Host)))
		rep = append(rep, a.Host...)
	case a.IP.Is6():
		rep = append(rep, atypIPv6)
		rep = append(rep, a.IP.AsSlice()...)
	case a.IP.Is4():
		rep = append(rep, atypIPv4)
		rep = append(rep, a.IP.AsSlice()...)
	default:
		rep = append(rep, atypIPv4, 0, 0, 0, 0)
	}
	rep = binary.BigEndian.AppendUint16(rep, a.Port)
	if _, err := c.Write(rep); err != nil || a.Code != 0 || r.Cmd != cmdConnect {
		return
	}
	if a.Serve != nil {
		a.Serve(c)
		return
	}
	io.Copy(c, c)
}

func (s *fakeSOCKS) record(r socksRequest) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
}

// rawServer serves each connection with h, for replies no real server
// sends.
func rawServer(t testing.TB, h func(c net.Conn)) *Dialer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				h(c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &Dialer{ProxyNetwork: "tcp", ProxyAddress: ln.Addr().String()}
}
