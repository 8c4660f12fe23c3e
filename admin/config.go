package admin

import (
	"errors"
	"io"
	"net/http"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// configEndpointList is the body of GET /config/endpoints.
type configEndpointList struct {
	Endpoints []orchestrator.Endpoint `json:"endpoints"`
	Count     int                     `json:"count"`
}

// validateResult is the body of a successful POST /config/validate.
type validateResult struct {
	Valid     bool `json:"valid"`
	Endpoints int  `json:"endpoints"`
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
// the server would load it, without applying anything. wrap has capped the
// body at Options.MaxConfigBytes, the server's server.max_config_bytes.
func (h *Handler) postConfigValidate(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return h.configBody.tooLarge()
		}
		return err
	}
	cfg, err := config.Parse(body, "request")
	if err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			// Keep every parse failure a 400, whatever its type.
			err = &config.Error{File: "request", Errors: []orchestrator.FieldError{{Message: err.Error()}}}
		}
		return err
	}
	return writeJSON(w, http.StatusOK, validateResult{Valid: true, Endpoints: len(cfg.Endpoints)})
}
