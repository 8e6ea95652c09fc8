package fleet_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

func TestConsoleTailOverTheWire(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 7})
	api := client(t, sim)
	ctx := context.Background()
	res, err := fleet.Launch(ctx, api, spec(1))
	if err != nil || len(res.InstanceIDs) != 1 {
		t.Fatalf("launch: %v %v", err, res.InstanceIDs)
	}
	id := res.InstanceIDs[0]
	// Nothing written yet: no lines, no error.
	if lines, err := fleet.ConsoleTail(ctx, api, id, 3); err != nil || len(lines) != 0 {
		t.Fatalf("empty console: %q, %v", lines, err)
	}
	boot := "Booting\r\nslurmd: error: Unable to register: Zero Bytes were transmitted\n\x1b[31mFAILED\x1b[0m Start slurmd\n\n" +
		strings.Repeat("x", 500) + "\nlast line\n"
	if err := sim.SetConsoleOutput(id, boot); err != nil {
		t.Fatal(err)
	}
	lines, err := fleet.ConsoleTail(ctx, api, id, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[31mFAILED[0m Start slurmd", strings.Repeat("x", 200) + "...", "last line"}
	if !slices.Equal(lines, want) {
		t.Fatalf("tail = %q\nwant   %q", lines, want)
	}
	// The raw wire shape: base64 output and a timestamp (what awscli and boto3 decode).
	out, err := api.(fleet.ConsoleAPI).GetConsoleOutput(ctx, consoleInput(id))
	if err != nil || out.Timestamp == nil {
		t.Fatalf("GetConsoleOutput: %v %+v", err, out)
	}
	if raw, _ := base64.StdEncoding.DecodeString(*out.Output); string(raw) != boot {
		t.Fatalf("output does not decode to what the instance wrote: %q", raw)
	}
	if _, err := fleet.ConsoleTail(ctx, api, "i-0000000000000dead", 3); fleet.ErrorCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("unknown instance: %v", err)
	}
}

func consoleInput(id string) *ec2.GetConsoleOutputInput {
	return &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)}
}
