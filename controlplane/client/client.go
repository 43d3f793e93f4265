// Package client is the Go client of drover's HTTPS API, used by the CLI
// and the agent: mutual TLS, JSON bodies, typed API errors, failover
// between servers, and idempotency keys that make every write safe to
// retry on another server.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// maxResponseBytes bounds a JSON response.
const maxResponseBytes = 64 << 20

// Client talks to a cluster through any of its servers.
type Client struct {
	http *http.Client
	// ReadFromLeader sends reads, like writes, to the leader when it is
	// known, so that an operator reads their own writes and the newest
	// state; agents leave it off and spread their reads over the servers.
	ReadFromLeader bool

	mu      sync.Mutex
	servers []string // base URLs, e.g. https://10.0.0.1:7400
	current int      // index of the server that answered last
	leader  string   // the leader's URL, as the last answer named it
}

// How long a client waits on a server that has gone silent — cut off,
// frozen, powered off — before it tries the next one, instead of as long as
// TCP would (minutes): a connection attempt gives up after dialTimeout, and
// a connection that has received nothing for pingAfter is pinged and
// closed when no answer comes within pingTimeout, which fails the requests
// on it (a long poll included) over to the next server.
const (
	dialTimeout = 5 * time.Second
	pingAfter   = 10 * time.Second
	pingTimeout = 5 * time.Second
)

// New returns a client for the servers (base URLs) with the TLS config. The
// client keeps its own copy of tlsConfig, which the caller may share.
func New(servers []string, tlsConfig *tls.Config) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSClientConfig:     tlsConfig.Clone(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
	}
	return &Client{http: &http.Client{Transport: tr}, servers: append([]string(nil), servers...)}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Servers returns the servers the client knows.
func (c *Client) Servers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.servers...)
}

// SetServers replaces the server list (agents learn it from responses).
func (c *Client) SetServers(servers []string) {
	if len(servers) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current < len(c.servers) {
		cur := c.servers[c.current]
		c.current = 0
		for i, s := range servers {
			if s == cur {
				c.current = i
			}
		}
	}
	c.servers = append([]string(nil), servers...)
}

// Request is one API call.
type Request struct {
	Method string
	Path   string    // with query string
	JSON   any       // encoded as the body, when set
	Body   io.Reader // raw body, when JSON is nil; failover needs an io.Seeker
	Size   int64     // Content-Length of Body
	// Key is the idempotency key of a write; one is made up when empty, so
	// that a retry on another server cannot apply the write twice.
	Key string
	// Avoid lists servers (base URLs) not to use for this request, such
	// as one that just served a corrupt chunk.
	Avoid map[string]bool
}

// ConnError is a failure to reach any server.
type ConnError struct {
	Tried []string
	Err   error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("cannot reach the control plane (tried %s): %s", strings.Join(e.Tried, ", "), cause(e.Err))
}

// cause says in a few words why a connection failed: "connection
// refused", "timed out", the certificate problem; else the error itself
// without the request it was made for.
func cause(err error) string {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		dnsErr    *net.DNSError
		opErr     *net.OpError
		urlErr    *url.Error
		netErr    net.Error
	)
	switch {
	case err == nil:
		return "no server to try"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (no server listening there)"
	case errors.As(err, &unknownCA):
		return "the server's certificate is not signed by the configured CA (another cluster?)"
	case errors.As(err, &hostname):
		return "the server's certificate does not name that address: " + hostname.Error()
	case errors.As(err, &invalid):
		return "the server's certificate is not valid: " + invalid.Error()
	case errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the server
		return "the server refused the TLS handshake (is the client certificate revoked, expired or of another cluster?): " + opErr.Err.Error()
	case errors.As(err, &dnsErr):
		return "cannot resolve host " + dnsErr.Name
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
}

func (e *ConnError) Unwrap() error { return e.Err }

// Do sends the request, failing over between servers on connection
// errors and on 503 answers, and decodes a JSON answer into out (unless
// out is nil). It returns the index the answer reflects, when the server
// sent one. API errors come back as *api.Error.
func (c *Client) Do(ctx context.Context, req Request, out any) (uint64, error) {
	resp, err := c.Send(ctx, req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	index, _ := strconv.ParseUint(resp.Header.Get(api.HeaderIndex), 10, 64)
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return index, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		return index, fmt.Errorf("bad answer from %s: %w", resp.Request.URL.Host, err)
	}
	return index, nil
}

// Send is Do without decoding: the caller reads and closes the body of a
// successful (2xx) response.
func (c *Client) Send(ctx context.Context, req Request) (*http.Response, error) {
	var body []byte
	if req.JSON != nil {
		b, err := json.Marshal(req.JSON)
		if err != nil {
			return nil, fmt.Errorf("cannot encode request: %w", err)
		}
		body = b
	}
	if req.Method != http.MethodGet && req.Key == "" {
		req.Key = newKey()
	}
	servers, start := c.snapshot(req.Method != http.MethodGet || c.ReadFromLeader)
	order := make([]int, len(servers))
	for i := range servers {
		order[i] = (start + i) % len(servers)
	}
	var tried []string
	var lastErr error
	redirected := false
	for len(order) > 0 {
		n := order[0]
		order = order[1:]
		base := servers[n]
		if req.Avoid[base] || slices.Contains(tried, base) {
			continue
		}
		if len(tried) > 0 && req.Body != nil {
			seeker, ok := req.Body.(io.Seeker)
			if !ok {
				break // a consumed stream cannot be sent again
			}
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		}
		tried = append(tried, base)
		hreq, err := c.build(ctx, base, req, body)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(hreq)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err
			continue
		}
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			lastErr = decodeError(resp)
			resp.Body.Close()
			continue
		case http.StatusMisdirectedRequest: // not the leader: ask the one it names, next
			lastErr = decodeError(resp)
			resp.Body.Close()
			leader := resp.Header.Get(api.HeaderLeader)
			c.answered(n, false, leader)
			if i := slices.Index(servers, leader); i >= 0 && !redirected {
				redirected = true
				order = append([]int{i}, order...)
			}
			continue
		}
		c.answered(n, req.Method == http.MethodGet, resp.Header.Get(api.HeaderLeader))
		if resp.StatusCode >= 300 {
			defer resp.Body.Close()
			return nil, decodeError(resp)
		}
		return resp, nil
	}
	var apiErr *api.Error
	if errors.As(lastErr, &apiErr) {
		return nil, apiErr
	}
	return nil, &ConnError{Tried: tried, Err: lastErr}
}

func (c *Client) build(ctx context.Context, base string, req Request, body []byte) (*http.Request, error) {
	var rd io.Reader
	switch {
	case body != nil:
		rd = bytes.NewReader(body)
	case req.Body != nil:
		rd = req.Body
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, base+req.Path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	} else if req.Body != nil {
		hreq.ContentLength = req.Size
		hreq.Header.Set("Content-Type", "application/octet-stream")
	}
	if req.Key != "" {
		hreq.Header.Set(api.HeaderIdempotencyKey, req.Key)
	}
	if c.ReadFromLeader {
		hreq.Header.Set(api.HeaderRead, api.ReadLeader)
	}
	return hreq, nil
}

// snapshot returns the servers and where to start. A write (or, with
// ReadFromLeader, any request) starts at the leader when the client knows
// it, saving the hop a follower would forward it through; reads stay where
// they are.
func (c *Client) snapshot(toLeader bool) ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.current
	if toLeader && c.leader != "" {
		for i, s := range c.servers {
			if s == c.leader {
				start = i
			}
		}
	}
	return append([]string(nil), c.servers...), start
}

// answered records that server n answered. Reads stick to the server that
// answered the last read, so that many clients spread over the servers;
// every answer names the leader, for writes.
func (c *Client) answered(n int, read bool, leader string) {
	c.mu.Lock()
	if read {
		c.current = n
	}
	c.leader = leader
	c.mu.Unlock()
}

// decodeError turns an error response into an *api.Error.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return &e
	}
	return &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s answered %s: %s", resp.Request.URL.Host, resp.Status, bytes.TrimSpace(b))}
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
