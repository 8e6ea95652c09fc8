package cli

import "errors"

// errNotYet marks a subcommand whose issue has not landed.
var errNotYet = errors.New("not implemented yet")
