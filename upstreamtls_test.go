package orchestrator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
)

// testPKI is a CA with a server certificate for users.internal (no IP
// address: dialing 127.0.0.1 verifies only with server_name) and a client
// certificate, written to files.
type testPKI struct {
	dir                           string
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage, dns ...string) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	serverCert, serverKey := issue(2, x509.ExtKeyUsageServerAuth, "users.internal")
	p.server, err = tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	clientCert, clientKey := issue(3, x509.ExtKeyUsageClientAuth)
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, b, 0o600))
		return f
	}
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	p.clientCert = write("client.pem", clientCert)
	p.clientKey = write("client-key.pem", clientKey)
	return p
}

// tlsBackend starts an HTTPS backend on 127.0.0.1 with the PKI's server
// certificate, requiring a client certificate when mutual is set.
func (p *testPKI) tlsBackend(t *testing.T, mutual bool) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.URL.Path)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
	if mutual {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = p.pool
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func tlsGateway(t *testing.T, target Target) *Orchestrator {
	o, err := New(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithEndpoints(Endpoint{Name: "svc", Targets: []Target{target}}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	return o
}

func tlsGet(o http.Handler) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil))
	return rec
}

func TestTargetTLS(t *testing.T) {
	p := newTestPKI(t)
	plain := p.tlsBackend(t, false)
	mutual := p.tlsBackend(t, true)

	t.Run("ca_file and server_name verify the target", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{CAFile: p.caFile, ServerName: "users.internal"}})
		rec := tlsGet(o)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "secure /x", rec.Body.String())
	})
	t.Run("without server_name the certificate does not match 127.0.0.1", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{CAFile: p.caFile}})
		assert.Equal(t, http.StatusBadGateway, tlsGet(o).Code)
	})
	t.Run("without ca_file the system roots do not know the CA", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{ServerName: "users.internal"}})
		assert.Equal(t, http.StatusBadGateway, tlsGet(o).Code)
	})
	t.Run("insecure_skip_verify accepts any certificate", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{InsecureSkipVerify: true}})
		assert.Equal(t, http.StatusOK, tlsGet(o).Code)
	})
	t.Run("mutual TLS presents the client certificate", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: mutual.URL, TLS: &TargetTLS{CAFile: p.caFile, ServerName: "users.internal", CertFile: p.clientCert, KeyFile: p.clientKey}})
		assert.Equal(t, http.StatusOK, tlsGet(o).Code)
		without := tlsGateway(t, Target{URL: mutual.URL, TLS: &TargetTLS{CAFile: p.caFile, ServerName: "users.internal"}})
		assert.Equal(t, http.StatusBadGateway, tlsGet(without).Code)
	})
	t.Run("targets with the same section share one transport", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{InsecureSkipVerify: true}})
		a, err := o.targetTransport(&TargetTLS{CAFile: p.caFile})
		require.NoError(t, err)
		b, err := o.targetTransport(&TargetTLS{CAFile: p.caFile})
		require.NoError(t, err)
		c, err := o.targetTransport(&TargetTLS{CAFile: p.caFile, ServerName: "other"})
		require.NoError(t, err)
		assert.Same(t, a, b)
		assert.NotSame(t, a, c)
	})
	t.Run("a target transport dials through the upstream guard", func(t *testing.T) {
		o := tlsGateway(t, Target{URL: plain.URL, TLS: &TargetTLS{InsecureSkipVerify: true}})
		rt, err := o.targetTransport(&TargetTLS{InsecureSkipVerify: true})
		require.NoError(t, err)
		// A cloud-metadata address: refused by the guard before any dial.
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://169.254.169.254/", nil)
		require.NoError(t, err)
		_, err = rt.RoundTrip(req)
		var blocked *netguard.BlockedError
		assert.True(t, errors.As(err, &blocked), "got %v; want the guard's refusal", err)
	})
}

func TestTargetTLSFilesAreValidated(t *testing.T) {
	p := newTestPKI(t)
	notPEM := filepath.Join(p.dir, "junk.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("junk"), 0o600))
	ep := Endpoint{Name: "svc", Targets: []Target{
		{URL: "https://127.0.0.1:1", TLS: &TargetTLS{CAFile: filepath.Join(p.dir, "missing.pem")}},
		{URL: "https://127.0.0.1:2", TLS: &TargetTLS{CAFile: notPEM}},
		{URL: "https://127.0.0.1:3", TLS: &TargetTLS{CertFile: p.clientCert, KeyFile: p.caFile}},
		{URL: "https://127.0.0.1:4", TLS: &TargetTLS{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}},
	}}
	var ve *ValidationError
	require.True(t, errors.As(ep.Validate(), &ve))
	var fields []string
	for _, fe := range ve.Errors {
		fields = append(fields, fe.Field)
	}
	assert.Equal(t, []string{"targets[0].tls.ca_file", "targets[1].tls.ca_file", "targets[2].tls.cert_file"}, fields)
}
