package orchestrator

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
)

// This file is TLS to one target (a target's tls section): its CA bundle,
// a client certificate for mutual TLS, the server name and an explicit
// insecure_skip_verify. A target with a tls section gets a transport of its
// own, cloned from the gateway's guarded one, so that its connections go
// through the upstream guard like every other and its TLS settings never
// leak into another target's pool. Targets with the same section (and the
// same file contents) share one transport and its connections.

// tlsTransports caches the transports of targets' tls sections. It grows
// with the distinct sections (and certificate files' contents) a
// configuration has held, which a configuration bounds; a rotated
// certificate gets a new transport at the next reload that rebuilds the
// endpoint.
type tlsTransports struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*http.Transport
}

// targetTransport returns the RoundTripper of a target with tls section c.
// Errors name the section's field ("ca_file: ..."). The files are read when
// a route is built (registration, reload), never per request.
func (o *Orchestrator) targetTransport(c *TargetTLS) (http.RoundTripper, error) {
	cfg, key, err := loadTargetTLS(c)
	if err != nil {
		return nil, err
	}
	o.tls.mu.Lock()
	defer o.tls.mu.Unlock()
	if t := o.tls.m[key]; t != nil {
		return t, nil
	}
	base, ok := o.transport.(*http.Transport)
	if !ok {
		return nil, errors.New("tls: a target's tls section needs the gateway's transport or an *http.Transport from WithTransport")
	}
	// Clone keeps DialContext: the upstream guard's, on the gateway's own
	// transport (a custom WithTransport is not guarded, as documented).
	t := base.Clone()
	t.TLSClientConfig = cfg
	if o.tls.m == nil {
		o.tls.m = make(map[[sha256.Size]byte]*http.Transport)
	}
	o.tls.m[key] = t
	return t, nil
}

// closeIdle closes the idle connections of every target transport.
func (c *tlsTransports) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.m {
		t.CloseIdleConnections()
	}
}

// loadTargetTLS builds the tls.Config of a section, reading its files, and
// a key that identifies the section with the files' contents.
func loadTargetTLS(c *TargetTLS) (*tls.Config, [sha256.Size]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %v\x00", c.CAFile, c.CertFile, c.KeyFile, c.ServerName, c.InsecureSkipVerify)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, [sha256.Size]byte{}, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
		h.Write(pem)
	}
	if c.CertFile != "" || c.KeyFile != "" {
		certPEM, err := os.ReadFile(c.CertFile)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("cert_file: %s and %s are not a certificate and its key: %w", c.CertFile, c.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		h.Write(certPEM)
		h.Write(keyPEM)
	}
	var key [sha256.Size]byte
	copy(key[:], h.Sum(nil))
	return cfg, key, nil
}
