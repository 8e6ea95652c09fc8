package cli

import "context"

func runGenerateConf(ctx context.Context, env *Env, args []string) error { return errNotYet }
