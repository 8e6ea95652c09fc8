package cli

import "context"

func runResume(ctx context.Context, env *Env, args []string) error { return errNotYet }

func runSuspend(ctx context.Context, env *Env, args []string) error { return errNotYet }

func runResumeFail(ctx context.Context, env *Env, args []string) error { return errNotYet }
