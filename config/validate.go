package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/netguard"
)

// Validate checks the whole configuration and returns a
// *orchestrator.ValidationError listing every problem with its field path,
// or nil. The breaker, health-check and endpoint rules are the library's
// (orchestrator.Desired.Validate); the rest are the server's.
func (c Config) Validate() error {
	var errs problems
	c.Server.validate(&errs)
	for i, a := range c.Registry.AllowedUpstreams {
		if _, err := netguard.New([]string{a}); err != nil {
			errs.add(fmt.Sprintf("registry.allowed_upstreams[%d]", i), err.Error()+"; want a CIDR, an IP address or a host name")
		}
	}
	if a := c.Admin.Listen; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			errs.add("admin.listen", fmt.Sprintf("%q must be host:port, such as 127.0.0.1:9000", a))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs.add("admin.listen", fmt.Sprintf("%q has an invalid port", a))
		}
	}
	for i, o := range c.Admin.AllowedOrigins {
		if !validOrigin(o) {
			errs.add(fmt.Sprintf("admin.allowed_origins[%d]", i), fmt.Sprintf("%q must be an origin such as https://admin.example.com", o))
		}
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			errs.add(fmt.Sprintf("cors.allowed_origins[%d]", i), fmt.Sprintf("%q must be \"*\" or an origin such as https://app.example.com", o))
		}
	}
	if c.CORS.AllowCredentials && slices.Contains(c.CORS.AllowedOrigins, "*") {
		errs.add("cors.allow_credentials", "cannot be combined with the \"*\" origin (browsers refuse it); list the origins")
	}
	switch strings.ToLower(c.Logging.Level) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		errs.add("logging.level", fmt.Sprintf("unknown level %q; want debug, info, warn or error", c.Logging.Level))
	}
	switch c.Logging.Format {
	case "", "json", "text":
	default:
		errs.add("logging.format", fmt.Sprintf("unknown format %q; want json or text", c.Logging.Format))
	}
	// The library's rules, one problem per label (metrics.labels.<name>).
	errs.merge(refusalOf(orchestrator.WithMetricsLabels(c.Metrics.Labels)))
	errs.merge(c.Desired().Validate())
	// Fallback endpoints must exist in the file (API endpoints may come and
	// go; a config fallback must not depend on them).
	ids := make(map[string]bool, len(c.Endpoints))
	for _, ep := range c.Endpoints {
		ids[ep.EndpointID()] = true
	}
	for i, ep := range c.Endpoints {
		if f := ep.Fallback; f != nil && f.Strategy == orchestrator.FallbackEndpoint && f.Endpoint != "" && f.Endpoint != ep.EndpointID() && !ids[f.Endpoint] {
			errs.add(fmt.Sprintf("endpoints[%d].fallback.endpoint", i), fmt.Sprintf("no endpoint in this file has id %q", f.Endpoint))
		}
	}
	// A header rule must not send the admin token out; the gateway checks
	// again with the token it runs with (which the environment may set).
	for i, ep := range c.Endpoints {
		for _, f := range ep.RequestHeaders.FieldsHolding(c.Admin.Token) {
			errs.add(fmt.Sprintf("endpoints[%d].request_headers.%s", i, f), orchestrator.AdminTokenMessage)
		}
		for _, f := range ep.ResponseHeaders.FieldsHolding(c.Admin.Token) {
			errs.add(fmt.Sprintf("endpoints[%d].response_headers.%s", i, f), orchestrator.AdminTokenMessage)
		}
	}
	return errs.orNil()
}

// validate checks the server section.
func (s Server) validate(errs *problems) {
	if s.Port < 0 || s.Port > 65535 {
		errs.add("server.port", fmt.Sprintf("%d is not a TCP port (1-65535)", s.Port))
	}
	if s.Host != "" && strings.ContainsAny(s.Host, " /") {
		errs.add("server.host", fmt.Sprintf("%q is not a host name or address", s.Host))
	}
	if s.Prefix != "" && refuses(orchestrator.WithPrefix(s.Prefix)) {
		errs.add("server.prefix", fmt.Sprintf("%q must be an absolute path such as /orchestrator", s.Prefix))
	}
	if s.MaxHeaderBytes < 0 {
		errs.add("server.max_header_bytes", "must not be negative")
	}
	if s.MaxBodyBytes < 0 {
		errs.add("server.max_body_bytes", "must not be negative")
	}
	if s.MaxHeaderCount < 0 {
		errs.add("server.max_header_count", "must not be negative")
	}
	if s.MaxConfigBytes < 0 {
		errs.add("server.max_config_bytes", "must not be negative")
	}
	if s.DrainDelay < 0 {
		errs.add("server.drain_delay", "must not be negative")
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		errs.add("server.tls", "cert_file and key_file must be set together")
	}
	for i, p := range s.TrustedProxies {
		if _, err := ParseTrustedProxy(p); err != nil {
			errs.add(fmt.Sprintf("server.trusted_proxies[%d]", i), err.Error())
		}
	}
}

func validOrigin(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	return ok && (scheme == "http" || scheme == "https") && host != "" && !strings.ContainsAny(host, "/?# ")
}

// ParseTrustedProxy parses a CIDR ("10.0.0.0/8") or a single address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// problems collects field errors as orchestrator.ValidationError does: the
// first orchestrator.MaxReportedErrors are listed, the rest counted.
type problems struct {
	orchestrator.ValidationError
}

func (p *problems) add(field, msg string) {
	p.addError(orchestrator.FieldError{Field: field, Message: msg})
}

func (p *problems) addError(fe orchestrator.FieldError) {
	if len(p.Errors) >= orchestrator.MaxReportedErrors {
		p.Omitted++
		return
	}
	p.Errors = append(p.Errors, fe)
}

// merge adds the problems of a *orchestrator.ValidationError (nil adds
// none), as if each had been added here in turn.
func (p *problems) merge(err error) {
	var ve *orchestrator.ValidationError
	switch {
	case err == nil:
		return
	case !errors.As(err, &ve):
		p.add("", err.Error())
		return
	}
	for _, fe := range ve.Errors {
		p.addError(fe)
	}
	p.Omitted += ve.Omitted
}

func (p *problems) orNil() error {
	if p.Total() == 0 {
		return nil
	}
	return &p.ValidationError
}
