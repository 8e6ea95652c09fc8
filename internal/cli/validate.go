package cli

import "context"

func runValidate(ctx context.Context, env *Env, args []string) error { return errNotYet }
