package fleet

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// ConsoleAPI is the one call that reads an instance's console. It is apart from EC2API so the
// fakes of EC2API need not grow; *ec2.Client satisfies both, and callers type-assert.
type ConsoleAPI interface {
	GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, opts ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

var _ ConsoleAPI = (*ec2.Client)(nil)

// maxConsoleLine bounds one console line in a log record.
const maxConsoleLine = 200

// ConsoleTail returns the last n lines of an instance's console output, for the log line that
// explains why a node group is held. GetConsoleOutput returns the output base64-encoded, with
// "Latest" asking for the newest serial console output where the instance type supports it
// ("GetConsoleOutput", Amazon EC2 API Reference). An instance that wrote nothing yet gives
// no lines and no error. api must implement ConsoleAPI (else an error says so).
func ConsoleTail(ctx context.Context, api EC2API, id string, n int) ([]string, error) {
	c, ok := api.(ConsoleAPI)
	if !ok {
		return nil, fmt.Errorf("reading the console of %s: this EC2 client cannot call GetConsoleOutput", id)
	}
	out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("reading the console of %s (GetConsoleOutput): %w", id, err)
	}
	return tailLines(aws.ToString(out.Output), n)
}

// tailLines decodes base64 console output and keeps its last n non-empty lines, each made
// printable and cut to maxConsoleLine bytes (the console is written by the instance: trust
// nothing in it).
func tailLines(b64 string, n int) ([]string, error) {
	if b64 == "" || n <= 0 {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("console output is not base64: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
		l = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f || r == '\uFFFD' {
				return -1
			}
			return r
		}, strings.ToValidUTF8(l, ""))
		if strings.TrimSpace(l) == "" {
			continue
		}
		if len(l) > maxConsoleLine {
			l = strings.ToValidUTF8(l[:maxConsoleLine], "") + "..."
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// GetConsoleOutput passes the call through the logging wrapper when the wrapped client can
// make it.
func (l *logged) GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, opts ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	c, ok := l.api.(ConsoleAPI)
	if !ok {
		return nil, fmt.Errorf("reading the console of %s: this EC2 client cannot call GetConsoleOutput", aws.ToString(in.InstanceId))
	}
	start := time.Now()
	out, err := c.GetConsoleOutput(ctx, in, opts...)
	l.done(ctx, "GetConsoleOutput", start, err, "instance", aws.ToString(in.InstanceId))
	return out, err
}
