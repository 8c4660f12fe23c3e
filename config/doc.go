// Package config is orchestratord's configuration file: its schema
// (Config and its sections), its loader and its defaults.
//
// Parse and Load read YAML or JSON (JSON is YAML) through internal/yamlconf,
// which reports every problem of a file at once, each located as
// file:line:column: unknown fields, wrong types and invalid values alike,
// in an *Error. WithDefaults fills in the server and logging defaults, and
// Validate checks a Config built in code.
//
// A Config reaches the gateway library in two ways: Options gives New the
// file's gateway settings (prefix, trusted proxies, limits, allowed
// upstreams, breaker and health defaults, endpoints), and Desired gives
// Apply the part a reload changes. The rest (listeners, TLS, the admin API,
// the state file, logging, CORS) is the reference server's own, read by
// internal/server.
//
// A program that embeds the library does not need this package: it passes
// its endpoints and policies to orchestrator.New as options, and changes
// them with Sync, Apply or the registration methods.
package config
