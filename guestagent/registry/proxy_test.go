package registry

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
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testProxy is an HTTP proxy: plain requests are answered by next (as if
// it were the registry behind the proxy), CONNECT tunnels go to tunnelTo
// whatever host they name.
type testProxy struct {
	next      http.Handler
	tunnelTo  string
	plain     atomic.Int64
	connects  atomic.Int64
	lastHosts atomic.Value
}

func (p *testProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.lastHosts.Store(r.Host)
	if r.Method == http.MethodConnect {
		p.connects.Add(1)
		if p.tunnelTo == "" {
			http.Error(w, "no tunnels", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", p.tunnelTo)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, buf); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
		return
	}
	p.plain.Add(1)
	p.next.ServeHTTP(w, r)
}

// TestProxiesAndInsecureName: a registry known only by a name that does
// not resolve, reached through the http-proxy of the configuration; plain
// HTTP is allowed because it is listed as insecure, and refused when not.
func TestProxiesAndInsecureName(t *testing.T) {
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	// Put an image in through the registry handler directly.
	direct := httptest.NewServer(reg)
	defer direct.Close()
	dr, _ := name.ParseReference(strings.TrimPrefix(direct.URL, "http://") + "/p/img:v1")
	img, _ := random.Image(512, 1)
	if err := remote.Write(dr, img); err != nil {
		t.Fatal(err)
	}
	proxy := &testProxy{next: reg}
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	c := newClient(t, Config{Insecure: []string{"registry.invalid:5000"}, HTTPProxy: ps.URL, HTTPSProxy: ps.URL})
	im, err := c.Resolve(context.Background(), mustRef(t, "registry.invalid:5000/p/img:v1"), Platform{OS: "linux", Architecture: "amd64"}, nil)
	if err != nil {
		t.Fatalf("resolve through the proxy: %v", err)
	}
	want, _ := img.Digest()
	if im.Digest.String() != want.String() || proxy.plain.Load() == 0 {
		t.Errorf("resolved %s through %d proxied requests", im.Digest, proxy.plain.Load())
	}
	// Not insecure: no plain HTTP, so nothing reaches the registry.
	before := proxy.plain.Load()
	c2 := newClient(t, Config{HTTPProxy: ps.URL, HTTPSProxy: ps.URL})
	if _, err := c2.Resolve(context.Background(), mustRef(t, "registry.invalid:5000/p/img:v1"), Platform{OS: "linux", Architecture: "amd64"}, nil); err == nil {
		t.Error("a secure registry was reached over plain HTTP")
	}
	if proxy.plain.Load() != before {
		t.Error("plain HTTP requests went out for a secure registry")
	}
	// NoProxy names hosts that go past the proxy (checked on the
	// transport's choice, so that nothing is dialled).
	c3 := newClient(t, Config{HTTPProxy: ps.URL, NoProxy: "registry.invalid"})
	req, _ := http.NewRequest("GET", "http://registry.invalid:5000/v2/", nil)
	if u, err := c3.p.proxy(req); err != nil || u != nil {
		t.Errorf("no-proxy host proxied through %v (%v)", u, err)
	}
	req, _ = http.NewRequest("GET", "http://other.invalid:5000/v2/", nil)
	if u, err := c3.p.proxy(req); err != nil || u == nil {
		t.Errorf("a host not in no-proxy is not proxied: %v", err)
	}
}

// TestCertsDir: a TLS registry with a certificate from a CA of its own is
// trusted only once that CA is in CertsDir/<host>/.
func TestCertsDir(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "secure.invalid"}, DNSNames: []string{"secure.invalid"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	keyDER, _ := x509.MarshalECPrivateKey(key)

	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(reg)
	cert, err := tlsPair(der, keyDER)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = cert
	srv.StartTLS()
	defer srv.Close()
	// Put an image in, trusting the server's certificate for the seeding.
	sr, _ := name.ParseReference(strings.TrimPrefix(srv.URL, "https://") + "/s/img:v1")
	img, _ := random.Image(512, 1)
	seed := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
	seed.TLSClientConfig.RootCAs.AddCert(caCert)
	if err := remote.Write(sr, img, remote.WithTransport(seed)); err != nil {
		t.Fatal(err)
	}
	proxy := &testProxy{next: http.NotFoundHandler(), tunnelTo: strings.TrimPrefix(srv.URL, "https://")}
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	certs := t.TempDir()
	ref := mustRef(t, "secure.invalid:443/s/img:v1")
	c := newClient(t, Config{HTTPSProxy: ps.URL, CertsDir: certs})
	_, err = c.Resolve(context.Background(), ref, Platform{OS: "linux", Architecture: "amd64"}, nil)
	var ue x509.UnknownAuthorityError
	if err == nil || (!errors.As(err, &ue) && !strings.Contains(err.Error(), "certificate")) {
		t.Fatalf("untrusted registry: %v", err)
	}
	dir := filepath.Join(certs, "secure.invalid:443")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same client sees the CA added meanwhile.
	if _, err := c.Resolve(context.Background(), ref, Platform{OS: "linux", Architecture: "amd64"}, nil); err != nil {
		t.Fatalf("registry with its CA in the certs dir: %v", err)
	}
	if proxy.connects.Load() == 0 {
		t.Error("the https-proxy was not used")
	}
}

func tlsPair(certDER, keyDER []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, nil
}
