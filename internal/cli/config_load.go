package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// DefaultConfigDir is the last place the configuration is looked for.
const DefaultConfigDir = "/etc/slurm-ec2"

// configDirEnv names the environment variable that gives the configuration directory.
const configDirEnv = "SLURM_EC2_CONFIG_DIR"

// addConfigFlag registers --config-dir on fs.
func addConfigFlag(fs *flag.FlagSet) *string {
	return fs.String("config-dir", "", "directory of config.json and partitions.json (default: $"+configDirEnv+
		", else the program's directory if it holds config.json, else "+DefaultConfigDir+")")
}

// configDirFor applies the lookup order of DESIGN.md: the flag, else $SLURM_EC2_CONFIG_DIR,
// else the directory of the program as invoked (argv[0], not following symlinks, so a
// resume.py symlink beside the JSON files finds them; a bare name is resolved through the
// executable's path) when it holds config.json, else /etc/slurm-ec2.
func configDirFor(env *Env, flagDir string) string {
	if flagDir != "" {
		return flagDir
	}
	if env.Getenv != nil {
		if d := env.Getenv(configDirEnv); d != "" {
			return d
		}
	}
	var progDir string
	if strings.ContainsRune(env.Program, filepath.Separator) {
		progDir = filepath.Dir(env.Program)
	} else if exe, err := os.Executable(); err == nil {
		progDir = filepath.Dir(exe)
	}
	if progDir != "" {
		if _, err := os.Stat(filepath.Join(progDir, config.ConfigFileName)); err == nil {
			return progDir
		}
	}
	return DefaultConfigDir
}

// loadConfig finds and loads the configuration. An invalid configuration gives an error
// whose ExitCode is 2 and whose text lists every problem, one per line.
func loadConfig(env *Env, configDir string) (*config.Config, error) {
	dir := configDirFor(env, configDir)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration (run 'slurm-ec2 validate --config-dir %s'):\n%w", dir, err)
	}
	return cfg, nil
}
