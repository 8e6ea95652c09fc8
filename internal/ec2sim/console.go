package ec2sim

import (
	"encoding/base64"
	"fmt"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// maxConsole is how much console output EC2 keeps: "Only the most recent 64 KB of console
// output is available" (GetConsoleOutput, Amazon EC2 API Reference).
const maxConsole = 64 << 10

// consoleJSON is the admin API's body of POST /ec2sim/console.
type consoleJSON struct {
	InstanceID string `json:"instance_id"`
	Output     string `json:"output"`
}

// SetConsoleOutput sets what GetConsoleOutput returns for an instance (a boot hook or a test
// plays the instance's console): the last 64 KB are kept, stamped with the Sim's clock.
func (s *Sim) SetConsoleOutput(id, output string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.findLocked(id)
	if in == nil {
		return fmt.Errorf("no instance %s", id)
	}
	b := []byte(output)
	if len(b) > maxConsole {
		b = b[len(b)-maxConsole:]
	}
	in.console, in.consoleAt = b, s.opts.Now()
	return nil
}

// getConsoleOutputResp is GetConsoleOutputResponse: instanceId, timestamp and output, the
// output base64-encoded ("GetConsoleOutput", Amazon EC2 API Reference, Response Elements).
// An instance that has written nothing has neither timestamp nor output.
type getConsoleOutputResp struct {
	query.ResponseMeta
	InstanceID string `xml:"instanceId"`
	Timestamp  string `xml:"timestamp,omitempty"`
	Output     string `xml:"output,omitempty"`
}

func (s *Sim) getConsoleOutput(c *call) (query.Body, error) {
	id := c.p.String("InstanceId")
	if id == "" {
		return nil, query.ErrMissingParameter("InstanceId")
	}
	if _, err := c.p.Bool("Latest"); err != nil {
		return nil, err
	}
	ins, err := c.region.lookupInstances([]string{id})
	if err != nil {
		return nil, err
	}
	in := ins[0]
	resp := &getConsoleOutputResp{InstanceID: in.id}
	if len(in.console) > 0 {
		resp.Timestamp = in.consoleAt.UTC().Format("2006-01-02T15:04:05.000Z")
		resp.Output = base64.StdEncoding.EncodeToString(in.console)
	}
	return resp, nil
}
