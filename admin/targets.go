package admin

import (
	"net/http"
)

// postDrainTarget takes one target of an endpoint out of balancing (an
// operator override, stored in the registry like a breaker trip) and
// answers the endpoint's view, whose targets show it drained.
func (h *Handler) postDrainTarget(w http.ResponseWriter, r *http.Request) error {
	id, target := r.PathValue("id"), r.PathValue("target")
	if err := h.o.DrainTarget(id, target); err != nil {
		return err
	}
	return h.answerEndpoint(w, id)
}

// postRestoreTarget ends a drain and answers the endpoint's view.
func (h *Handler) postRestoreTarget(w http.ResponseWriter, r *http.Request) error {
	id, target := r.PathValue("id"), r.PathValue("target")
	if err := h.o.RestoreTarget(id, target); err != nil {
		return err
	}
	return h.answerEndpoint(w, id)
}

// answerEndpoint answers the endpoint's view after a change.
func (h *Handler) answerEndpoint(w http.ResponseWriter, id string) error {
	ep, err := h.o.Endpoint(id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ep)
}
