package ec2sim

import (
	"net"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

type throttleFunc func(action string) bool

func (f throttleFunc) AllowCall(c throttle.Call) bool { return f(c.Action) }

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
