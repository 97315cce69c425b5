// Package testutil holds helpers shared by tests: normalised error measures
// and the discovery of fixture folders (the repository's own plus the ones
// named by an environment variable).
package testutil
