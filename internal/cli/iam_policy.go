package cli

import "context"

func runIAMPolicy(ctx context.Context, env *Env, args []string) error { return errNotYet }
