package admin_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
)

// The gateway and its admin API mounted under paths of their own in one
// ServeMux, the admin API behind the host service's authentication.
func ExampleNew() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "users")
	}))
	defer backend.Close()

	gw, err := orchestrator.New(
		orchestrator.WithPrefix("/api"),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "users", Version: "v1", URL: backend.URL}),
	)
	if err != nil {
		panic(err)
	}
	defer gw.Close()

	adm := admin.New(gw, admin.Options{
		// The host's own authentication replaces the admin token. This
		// header stands in for a real check (a session, mTLS, a header an
		// SSO proxy verified): a client can set it to anything.
		Authorize: func(r *http.Request) error {
			switch user := r.Header.Get("X-User"); user {
			case "":
				return errors.New("sign in first") // 401
			case "ops":
				return nil
			default:
				return fmt.Errorf("%w: %s is not an operator", admin.ErrForbidden, user) // 403
			}
		},
		Logger: slog.New(slog.DiscardHandler), // quiet for the example; refusals log at warn
	})

	mux := http.NewServeMux()
	mux.Handle(gw.Prefix()+"/", gw)                        // the gateway strips its own prefix, /api
	mux.Handle("/admin/", http.StripPrefix("/admin", adm)) // the admin API wants paths from the root

	get := func(target, user string) {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if user != "" {
			r.Header.Set("X-User", user)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		fmt.Printf("%s as %q: %d\n", target, user, rec.Code)
	}
	get("/api/users/v1/42", "")
	get("/admin/health", "")
	get("/admin/registry/endpoints", "")
	get("/admin/registry/endpoints", "guest")
	get("/admin/registry/endpoints", "ops")
	// Output:
	// /api/users/v1/42 as "": 200
	// /admin/health as "": 200
	// /admin/registry/endpoints as "": 401
	// /admin/registry/endpoints as "guest": 403
	// /admin/registry/endpoints as "ops": 200
}
