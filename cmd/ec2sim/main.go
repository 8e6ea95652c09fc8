// Command ec2sim is an EC2 emulator that speaks the EC2 Query protocol and IMDSv2.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ec2sim: not built yet")
	os.Exit(1)
}
