package cli

import "context"

func runNodename(ctx context.Context, env *Env, args []string) error { return errNotYet }
