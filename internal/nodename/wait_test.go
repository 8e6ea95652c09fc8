package nodename

import (
	"testing"
	"time"
)

func TestWaitForBurst(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, MinDefaultWait},
		{1, MinDefaultWait},
		{100, MinDefaultWait},   // the bucket's burst names them at once
		{400, MinDefaultWait},   // 30 s + 30 s
		{401, 61 * time.Second}, // a 301st call past the burst needs 30.1 s: rounded up
		{1000, 120 * time.Second},
		{2500, 270 * time.Second},
		{10000, 1020 * time.Second},
	}
	for _, tt := range tests {
		if got := WaitForBurst(tt.n); got != tt.want {
			t.Errorf("WaitForBurst(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}
