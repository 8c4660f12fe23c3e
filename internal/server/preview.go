package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// Preview is what a running gateway answers for a config it was sent
// (POST /config/validate): the plan and the settings a reload would not
// apply.
type Preview struct {
	Plan            orchestrator.Plan          `json:"plan"`
	RestartRequired []orchestrator.FieldChange `json:"restart_required"`
}

// RemoteInvalidError is a config the running gateway refused: its problem
// document's detail and each error, as "field: message" lines.
type RemoteInvalidError struct {
	Detail string
	Lines  []string
}

func (e *RemoteInvalidError) Error() string {
	return e.Detail + "\n" + strings.Join(e.Lines, "\n")
}

// previewTimeout bounds the request to the gateway: an operator waits.
const previewTimeout = 30 * time.Second

// FetchPreview sends the config file's bytes to the admin API at adminURL
// (the gateway's admin address, such as http://127.0.0.1:8000) and returns
// its plan. token, when set, is sent as the bearer token. A config the
// gateway refuses is a *RemoteInvalidError; any other failure (the gateway
// unreachable, a 401, a 5xx) is an error saying what happened.
func FetchPreview(ctx context.Context, client *http.Client, adminURL, token, path string, data []byte) (Preview, error) {
	base, err := url.Parse(adminURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return Preview{}, fmt.Errorf("--diff %q: want the gateway's admin address, such as http://127.0.0.1:8000", adminURL)
	}
	ctx, cancel := context.WithTimeout(ctx, previewTimeout)
	defer cancel()
	target := strings.TrimSuffix(base.String(), "/") + "/config/validate"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return Preview{}, err
	}
	req.Header.Set("Content-Type", "application/yaml")
	if strings.EqualFold(filepath.Ext(path), ".json") {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return Preview{}, fmt.Errorf("cannot reach the gateway at %s: %w", adminURL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return Preview{}, fmt.Errorf("reading the gateway's answer: %w", err)
	}
	if res.StatusCode == http.StatusOK {
		var p Preview
		if err := json.Unmarshal(body, &p); err != nil {
			return Preview{}, fmt.Errorf("the gateway at %s answered what is not a plan: %w", adminURL, err)
		}
		return p, nil
	}
	var problem struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	json.Unmarshal(body, &problem)
	if res.StatusCode == http.StatusBadRequest && strings.HasSuffix(problem.Type, "invalid-config") {
		invalid := &RemoteInvalidError{Detail: "the running gateway refuses it: " + problem.Detail}
		for _, e := range problem.Errors {
			invalid.Lines = append(invalid.Lines, e.Field+": "+e.Message)
		}
		return Preview{}, invalid
	}
	detail := problem.Detail
	if detail == "" {
		detail = strings.TrimSpace(string(body))
	}
	return Preview{}, fmt.Errorf("the gateway at %s answered %s: %s", adminURL, res.Status, detail)
}

// WritePlan writes a preview as an operator reads it before saving the
// file, in the manner of terraform plan: + added, - removed, ~ changed,
// each field with its old and new values, then a summary line.
func WritePlan(w io.Writer, p Preview) {
	plan := p.Plan
	for _, ep := range plan.Added {
		fmt.Fprintf(w, "+ endpoint %s (%s)\n", ep.ID, ep.Route)
		for _, t := range ep.Targets {
			fmt.Fprintf(w, "    + target %s %s\n", t.ID, t.URL)
		}
	}
	for _, ep := range plan.Removed {
		fmt.Fprintf(w, "- endpoint %s (%s)\n", ep.ID, ep.Route)
	}
	for _, c := range plan.Changed {
		fmt.Fprintf(w, "~ endpoint %s\n", c.ID)
		writeFields(w, "    ", c.Fields)
		for _, t := range c.TargetsAdded {
			fmt.Fprintf(w, "    + target %s %s\n", t.ID, t.URL)
		}
		for _, t := range c.TargetsRemoved {
			fmt.Fprintf(w, "    - target %s %s\n", t.ID, t.URL)
		}
		for _, t := range c.TargetsChanged {
			fmt.Fprintf(w, "    ~ target %s\n", t.ID)
			writeFields(w, "        ", t.Fields)
		}
	}
	if len(plan.Defaults) > 0 {
		fmt.Fprintf(w, "~ global defaults (every endpoint's breaker and health state start afresh)\n")
		writeFields(w, "    ", plan.Defaults)
	}
	if len(p.RestartRequired) > 0 {
		fmt.Fprintf(w, "! takes effect only at restart (a reload does not apply it)\n")
		writeFields(w, "    ", p.RestartRequired)
	}
	if plan.Empty() {
		fmt.Fprintf(w, "No changes: the running gateway already serves this config (%d endpoints).\n", plan.Unchanged)
		return
	}
	fmt.Fprintf(w, "Plan: %d to add, %d to change, %d to remove; %d unchanged.\n",
		len(plan.Added), len(plan.Changed), len(plan.Removed), plan.Unchanged)
}

func writeFields(w io.Writer, indent string, fields []orchestrator.FieldChange) {
	for _, f := range fields {
		switch {
		case f.Old == nil:
			fmt.Fprintf(w, "%s+ %s: %s\n", indent, f.Field, planValue(f.New))
		case f.New == nil:
			fmt.Fprintf(w, "%s- %s: %s\n", indent, f.Field, planValue(f.Old))
		default:
			fmt.Fprintf(w, "%s~ %s: %s -> %s\n", indent, f.Field, planValue(f.Old), planValue(f.New))
		}
	}
}

// planValue writes a value as the admin API's JSON has it: strings
// quoted, durations in seconds, lists in brackets.
func planValue(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}
