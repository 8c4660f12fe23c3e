// Package testutil holds the helpers that the tests of several packages of
// this module share: a log buffer that a server may write into while the
// test reads it, a poll-until helper, the problem document as the gateway
// and the admin API write it, and file writers for config files.
//
// It is an ordinary (non-test) package so that the test files of every
// package can import it, in-package tests included. For that it imports
// nothing from this module: a package that testutil imported could not use
// it in its own in-package tests (the import would be a cycle). Every helper
// takes a testing.TB and reports failures through it; none starts a
// goroutine or sleeps.
package testutil
