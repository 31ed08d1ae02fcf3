package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/tbsim/tbsim/device"
)

// TransportOptions describe how devices reach a server.
type TransportOptions struct {
	// Server is mqtt://host:port (default port 1883) or mqtts://host:port (8883).
	Server   string
	CAFile   string // PEM roots for mqtts (default: the system's)
	Insecure bool   // skip certificate verification
	CertFile string // client certificate (X.509 device profiles)
	KeyFile  string
	// SourceIPs are local addresses to dial from, in turn, so one machine
	// can open more connections than one source address allows.
	SourceIPs   []string
	DialTimeout time.Duration
}

// NewDialer returns a dialer for the server.
func NewDialer(o TransportOptions) (device.Dialer, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server %q: want mqtt://host:port or mqtts://host:port", o.Server)
	}
	host := u.Host
	var tlsConf *tls.Config
	switch u.Scheme {
	case "mqtt", "tcp":
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "1883")
		}
	case "mqtts", "ssl", "tls":
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "8883")
		}
		if tlsConf, err = tlsConfig(o, u.Hostname()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("server %q: scheme must be mqtt or mqtts", o.Server)
	}
	var locals []net.Addr
	for _, ip := range o.SourceIPs {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, fmt.Errorf("source IP %q is not an IP address", ip)
		}
		locals = append(locals, &net.TCPAddr{IP: a})
	}
	timeout := o.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var next atomic.Uint64
	return func(ctx context.Context) (net.Conn, error) {
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		if len(locals) > 0 {
			d.LocalAddr = locals[next.Add(1)%uint64(len(locals))]
		}
		if tlsConf == nil {
			return d.DialContext(ctx, "tcp", host)
		}
		return (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", host)
	}, nil
}

func tlsConfig(o TransportOptions, serverName string) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, InsecureSkipVerify: o.Insecure, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", o.CAFile)
		}
		c.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("client certificate: give both the certificate and the key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ServerHost is what the devices print in "[PROVISION] Connecting to:": the
// host of a --server URL without scheme or port, as the seed prints its
// TB_SERVER, or "embedded" for the in-process server ("").
func ServerHost(server string) string {
	if server == "" {
		return "embedded"
	}
	if u, err := url.Parse(server); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return server
}
