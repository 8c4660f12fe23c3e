package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/jsondiff"
)

// configEndpointList is the body of GET /config/endpoints.
type configEndpointList struct {
	Endpoints []orchestrator.Endpoint `json:"endpoints"`
	Count     int                     `json:"count"`
}

// validateResult is the body of a successful POST /config/validate. Path
// is the file's, when the file was validated rather than a body.
type validateResult struct {
	Valid     bool   `json:"valid"`
	Endpoints int    `json:"endpoints"`
	Path      string `json:"path,omitempty"`
	// Plan is what applying the config would change in the running
	// gateway (Orchestrator.PlanApply).
	Plan orchestrator.Plan `json:"plan"`
	// RestartRequired lists the changed settings outside endpoints,
	// circuit_breaker and health_check, which a reload does not apply:
	// they take effect when the server restarts. Empty without a config
	// manager to compare with.
	RestartRequired []orchestrator.FieldChange `json:"restart_required"`
}

// preview adds to a valid config's answer what applying it would do.
func (h *Handler) preview(r *http.Request, cfg *config.Config, res *validateResult) error {
	plan, err := h.o.PlanApply(r.Context(), cfg.Desired())
	if err != nil {
		if errors.Is(err, orchestrator.ErrInvalid) {
			return asConfigError(err, res.Path)
		}
		return err
	}
	res.Plan = plan
	res.RestartRequired = []orchestrator.FieldChange{}
	if h.opts.Config != nil {
		res.RestartRequired = restartRequired(h.opts.Config.Config(), *cfg)
	}
	return nil
}

// restartRequired compares the sections a reload leaves alone. Values are
// compared redacted, so the admin token is never echoed: a changed token
// reads as [redacted] on both sides.
func restartRequired(applied, next config.Config) []orchestrator.FieldChange {
	tokenChanged := applied.Admin.Token != next.Admin.Token
	a, b := applied.Redacted(), next.Redacted()
	a.Endpoints, b.Endpoints = nil, nil
	a.CircuitBreaker, b.CircuitBreaker = orchestrator.CircuitBreakerConfig{}, orchestrator.CircuitBreakerConfig{}
	a.HealthCheck, b.HealthCheck = orchestrator.HealthCheckConfig{}, orchestrator.HealthCheckConfig{}
	a.RateLimit, b.RateLimit = nil, nil
	a.AdaptiveConcurrency, b.AdaptiveConcurrency = nil, nil
	out := []orchestrator.FieldChange{}
	for _, c := range jsondiff.Leaves("", a, b) {
		out = append(out, orchestrator.FieldChange{Field: c.Field, Old: c.Old, New: c.New})
	}
	if tokenChanged && a.Admin.Token == b.Admin.Token {
		out = append(out, orchestrator.FieldChange{Field: "admin.token", Old: a.Admin.Token, New: b.Admin.Token})
	}
	return out
}

// configStatus returns the manager's status with the admin token scrubbed
// from its error, or an empty status when there is no config file.
func (h *Handler) configStatus() ConfigStatus {
	if h.opts.Config == nil {
		return ConfigStatus{}
	}
	st := h.opts.Config.Status()
	if st.LastError != nil {
		msg := h.redact(*st.LastError)
		st.LastError = &msg
	}
	return st
}

func (h *Handler) getConfigStatus(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, h.configStatus())
}

// getConfigEndpoints lists the applied config's endpoints, normalized (id
// filled in). Without a config file it lists the config-owned endpoints the
// program registered itself (orchestrator.WithEndpoints).
func (h *Handler) getConfigEndpoints(w http.ResponseWriter, r *http.Request) error {
	eps := []orchestrator.Endpoint{}
	if h.opts.Config != nil {
		for _, ep := range h.opts.Config.Config().Redacted().Endpoints {
			eps = append(eps, ep.Normalized())
		}
	} else {
		for _, ep := range h.o.Endpoints() {
			if ep.Source == orchestrator.SourceConfig {
				eps = append(eps, ep.Config)
			}
		}
	}
	return writeJSON(w, http.StatusOK, configEndpointList{Endpoints: eps, Count: len(eps)})
}

// postConfigReload re-reads and applies the file, answering the new
// status; an invalid file answers 400 listing every error.
func (h *Handler) postConfigReload(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Config == nil {
		return noConfigFile()
	}
	if err := h.opts.Config.Reload(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.configStatus())
}

// postConfigValidate parses a YAML or JSON config from the body exactly as
// the server would load it, without applying anything; with an empty body
// it validates the config file the server runs on, as a reload would read
// it. wrap has capped the body at Options.MaxConfigBytes, the server's
// server.max_config_bytes.
func (h *Handler) postConfigValidate(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return h.configBody.tooLarge()
		}
		return err
	}
	if len(body) == 0 {
		return h.validateConfigFile(w, r)
	}
	// No file name: the problem document then speaks of "the
	// configuration", while the file's names its path.
	cfg, err := config.Parse(body, "")
	if err != nil {
		return asConfigError(err, "")
	}
	res := validateResult{Valid: true, Endpoints: len(cfg.Endpoints)}
	if err := h.preview(r, cfg, &res); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// validateConfigFile answers POST /config/validate without a body: the
// file on disk, checked by the manager (ConfigFileValidator), so that an
// edit can be checked before it is reloaded or picked up by the watcher.
func (h *Handler) validateConfigFile(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Config == nil {
		return noConfigFile()
	}
	v, ok := h.opts.Config.(ConfigFileValidator)
	if !ok {
		return fmt.Errorf("the config manager cannot validate its file without applying it (it does not implement admin.ConfigFileValidator); send the file as the body: %w", ErrNoConfigFile)
	}
	path := h.opts.Config.Status().Path
	cfg, err := v.ValidateFile(r.Context())
	switch {
	case errors.Is(err, ErrNoConfigFile):
		return err
	case errors.Is(err, orchestrator.ErrInvalid):
		return asConfigError(err, path)
	case err != nil:
		return err
	}
	res := validateResult{Valid: true, Endpoints: len(cfg.Endpoints), Path: path}
	if err := h.preview(r, cfg, &res); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// asConfigError keeps every parse failure of a config a 400 listing its
// problems, whatever the error's type.
func asConfigError(err error, file string) error {
	var (
		ce *config.Error
		ve *orchestrator.ValidationError
	)
	switch {
	case errors.As(err, &ce):
		return err
	case errors.As(err, &ve):
		return &config.Error{File: file, Errors: ve.Errors, Omitted: ve.Omitted}
	}
	return &config.Error{File: file, Errors: []orchestrator.FieldError{{Message: err.Error()}}}
}
