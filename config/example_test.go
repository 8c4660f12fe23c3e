package config_test

import (
	"context"
	"fmt"
	"log"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// A program that reads orchestratord's file builds its gateway with
// Options, and applies the file again with Desired.
func ExampleConfig_Options() {
	cfg, err := config.Parse([]byte(`
server:
  prefix: /api
health_check:
  enabled: false
endpoints:
  - name: users
    version: v1
    url: http://127.0.0.1:9001
`), "config.yaml")
	if err != nil {
		log.Fatal(err) // every problem as config.yaml:line:column: field: message
	}
	o, err := orchestrator.New(cfg.Options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer o.Close()
	fmt.Println(o.Prefix(), len(o.Endpoints()))

	cfg.Endpoints = append(cfg.Endpoints, orchestrator.Endpoint{Name: "orders", URL: "http://127.0.0.1:9002"})
	if err := o.Apply(context.Background(), cfg.Desired()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(o.Endpoints()))
	// Output:
	// /api 1
	// 2
}

// Parse reports every problem of a file at once, each with its line and
// column.
func ExampleParse() {
	_, err := config.Parse([]byte("server:\n  port: 99999\nendpoints:\n  - name: users\n"), "config.yaml")
	fmt.Println(err)
	// Output:
	// config.yaml:2:9: server.port: 99999 is not a TCP port (1-65535)
	// config.yaml:4:5: endpoints[0].url: is required
}
