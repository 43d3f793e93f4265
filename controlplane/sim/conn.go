package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// maxAnswer bounds an answer a simulated agent reads (a desired state
// carries manifests, signatures and chunk lists).
const maxAnswer = 16 << 20

// conn is one simulated agent's link to the cluster: its own HTTP/2
// transport (so its own TCP connection and mutual-TLS session), dialled
// from its own loopback source address, and the index of the server it
// uses now. It fails over between servers as the real client does, but
// sends writes through the server it is connected to (which forwards
// them to the leader) so that each agent holds one connection.
type conn struct {
	servers []string
	cur     atomic.Int32 // index of the server in use; read by Fleet.OnServer
	home    int          // the server it started on
	http    *http.Client
}

func newConn(servers []string, first int, tlsCfg *tls.Config, src netip.Addr) *conn {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 1,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &conn{servers: servers, home: first % len(servers), http: &http.Client{Transport: tr}}
	c.cur.Store(int32(c.home))
	return c
}

func (c *conn) close() { c.http.CloseIdleConnections() }

// errUnavailable is a 503: the server has no leader or is shutting down.
var errUnavailable = errors.New("server unavailable")

// once sends one request to the current server only, with an idempotency
// key when key is set. It returns a
// transport error or errUnavailable for a failure worth trying elsewhere,
// an *api.Error for a refusal.
func (c *conn) once(ctx context.Context, method, path, key string, body []byte, out any) (uint64, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server()+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	index, _ := strconv.ParseUint(resp.Header.Get(api.HeaderIndex), 10, 64)
	lim := io.LimitReader(resp.Body, maxAnswer)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		_, _ = io.Copy(io.Discard, lim)
		return 0, errUnavailable
	case resp.StatusCode >= 300:
		b, _ := io.ReadAll(io.LimitReader(lim, 64<<10))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return 0, &e
		}
		return 0, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s answered %s", c.server(), resp.Status)}
	case out == nil:
		_, err = io.Copy(io.Discard, lim)
		return index, err
	default:
		if err := json.NewDecoder(lim).Decode(out); err != nil {
			return index, fmt.Errorf("bad answer from %s: %w", c.server(), err)
		}
		return index, nil
	}
}

// retryable reports whether a failure may succeed on another server.
func retryable(err error) bool {
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		return apiErr.Code == api.CodeUnavailable || apiErr.Code == api.CodeInternal
	}
	return err != nil
}

// next moves to the following server, dropping any idle connection to
// the one it leaves (each agent holds one connection at a time).
func (c *conn) next() {
	c.cur.Store((c.cur.Load() + 1) % int32(len(c.servers)))
	c.http.CloseIdleConnections()
}

// goHome moves back to the server it started on.
func (c *conn) goHome() {
	if int(c.cur.Load()) != c.home {
		c.cur.Store(int32(c.home))
		c.http.CloseIdleConnections()
	}
}

// server is the base URL of the server in use.
func (c *conn) server() string { return c.servers[c.cur.Load()] }
