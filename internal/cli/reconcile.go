package cli

import "context"

func runReconcile(ctx context.Context, env *Env, args []string) error { return errNotYet }

func runStatus(ctx context.Context, env *Env, args []string) error { return errNotYet }
