package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// tagEC2 answers CreateTags through ec2sim's model of EC2's token buckets (fake time inside a
// synctest bubble) after 40 ms, and records every call that passed.
type tagEC2 struct {
	fleet.EC2API // nil: any other call panics
	lim          *throttle.Limiter
	fail         func(id string, try int) error // optional per-instance failure

	mu        sync.Mutex
	start     time.Time
	passed    []tagCall
	throttled int
	tries     map[string]int
}

type tagCall struct {
	at   time.Duration // since start, when EC2 admitted it
	id   string
	name string
}

func newTagEC2() *tagEC2 {
	return &tagEC2{lim: throttle.New(throttle.AWS(), nil), start: time.Now(), tries: map[string]int{}}
}

func (f *tagEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.mu.Lock()
	id := in.Resources[0]
	f.tries[id]++
	try := f.tries[id]
	f.mu.Unlock()
	if !f.lim.Allow("CreateTags", 0) {
		f.mu.Lock()
		f.throttled++
		f.mu.Unlock()
		return nil, &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	}
	if f.fail != nil {
		if err := f.fail(id, try); err != nil {
			return nil, err
		}
	}
	at := time.Since(f.start)
	select {
	case <-time.After(40 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passed = append(f.passed, tagCall{at: at, id: id, name: aws.ToString(in.Tags[0].Value)})
	return &ec2.CreateTagsOutput{}, nil
}

// nameSets is one Name tag per instance i-<k> for node-<k>, k in ks.
func nameSets(ks ...int) []fleet.TagSet {
	out := make([]fleet.TagSet, len(ks))
	for i, k := range ks {
		out[i] = fleet.TagSet{InstanceIDs: []string{fmt.Sprintf("i-%04d", k)}, Tags: []types.Tag{fleet.T(fleet.TagName, fmt.Sprintf("node-%d", k))}}
	}
	return out
}

func shuffled(n int) []int {
	ks := make([]int, n)
	for i := range ks {
		ks[i] = i
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
	return ks
}

func TestCreateTagsBucketIsEC2sModel(t *testing.T) {
	got := throttle.AWS().Request[throttle.ClassifyAWS("CreateTags")]
	if got.Capacity != fleet.CreateTagsBucket.Capacity || got.RefillPerSecond != fleet.CreateTagsBucket.PerSecond {
		t.Errorf("ec2sim's CreateTags bucket %+v, fleet.CreateTagsBucket %+v: the two models of EC2's documented bucket disagree",
			got, fleet.CreateTagsBucket)
	}
}

// A fresh bucket: the first 100 calls at once, then 10 a second, so 300 tags end 20 s after the
// first, with no throttled answer, in node order whatever the order they were added in.
func TestTaggerUsesTheBurstThenTheRefill(t *testing.T) {
	for _, n := range []int{50, 300, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := newTagEC2()
				tg := fleet.NewTagger(t.Context(), api, "us-east-1", fleet.TagOptions{})
				tg.Add(nameSets(shuffled(n)...)...)
				r := tg.Wait()
				if r.Err != nil || len(r.Failed) != 0 || r.Tagged != n || api.throttled != 0 {
					t.Fatalf("tagged %d of %d, %d throttled, failed %v: %v", r.Tagged, n, api.throttled, r.Failed, r.Err)
				}
				// What the bucket allows: the last call admitted at (n-100)/10 s.
				bound := time.Duration(max(0, n-100)) * time.Second / 10
				last := api.passed[len(api.passed)-1].at
				if last < bound || last > bound+300*time.Millisecond { // 8 calls in flight, 40 ms each
					t.Errorf("last tag admitted at %v; the bucket allows %v", last, bound)
				}
				for i := 1; i < len(api.passed); i++ {
					a, b := api.passed[i-1], api.passed[i]
					if b.at < a.at {
						t.Fatalf("calls recorded out of time order")
					}
					if b.at > a.at && fleet.NaturalCompare(b.name, a.name) < 0 {
						t.Fatalf("%s (at %v) tagged after %s (at %v): not node order", b.name, b.at, a.name, a.at)
					}
				}
			})
		})
	}
}

// Another caller emptied the account's bucket just before: the Tagger's first calls are
// throttled, it slows down, then recovers, and every instance is tagged a little after what the
// bucket allows, with few throttled answers.
func TestTaggerSlowsDownWhenThrottledThenRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newTagEC2()
		for range 100 {
			api.lim.Allow("CreateTags", 0)
		}
		tg := fleet.NewTagger(t.Context(), api, "us-east-1", fleet.TagOptions{})
		tg.Add(nameSets(shuffled(300)...)...)
		r := tg.Wait()
		if r.Err != nil || r.Tagged != 300 {
			t.Fatalf("tagged %d of 300: %v", r.Tagged, r.Err)
		}
		// The bucket allows 300 calls in 30 s from empty.
		last := api.passed[len(api.passed)-1].at
		if last < 30*time.Second || last > 36*time.Second {
			t.Errorf("last tag at %v; from an empty bucket 300 calls need 30 s (want at most 1.2x)", last)
		}
		t.Logf("last tag at %v, %d throttled", last, api.throttled)
		if api.throttled > 30 || r.Throttled != api.throttled {
			t.Errorf("%d throttled answers (Tagger counted %d); want few (≤ 30)", api.throttled, r.Throttled)
		}
	})
}

// Another caller tags at 4 calls a second throughout: the Tagger gets the rest of the bucket.
func TestTaggerSharesTheBucketWithAnotherCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newTagEC2()
		ctx, stop := context.WithCancel(t.Context())
		other := 0
		otherDone := make(chan struct{})
		go func() {
			defer close(otherDone)
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if api.lim.Allow("CreateTags", 0) {
						other++
					}
				}
			}
		}()
		tg := fleet.NewTagger(t.Context(), api, "us-east-1", fleet.TagOptions{})
		tg.Add(nameSets(shuffled(300)...)...)
		r := tg.Wait()
		stop()
		<-otherDone
		if r.Err != nil || r.Tagged != 300 {
			t.Fatalf("tagged %d of 300: %v", r.Tagged, r.Err)
		}
		// The other caller's 4/s leave 6/s: the 200 calls after the burst need at least 200/6 s.
		last := api.passed[len(api.passed)-1].at
		if last > 50*time.Second {
			t.Errorf("last tag at %v; sharing the bucket allows about %v", last, 200*time.Second/6)
		}
		t.Logf("last tag at %v, %d throttled, other caller %d", last, api.throttled, other)
		if api.throttled > 60 {
			t.Errorf("%d throttled answers; want the Tagger to settle at its share", api.throttled)
		}
	})
}

func TestTaggerRetriesWhatMayPassAndReportsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newTagEC2()
		api.fail = func(id string, try int) error {
			switch {
			case id == "i-0001" && try <= 2: // not visible yet right after CreateFleet
				return &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound"}
			case id == "i-0002" && try == 1:
				return &smithy.GenericAPIError{Code: "InternalError"}
			case id == "i-0003":
				return &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not allowed to tag"}
			}
			return nil
		}
		tg := fleet.NewTagger(t.Context(), api, "us-east-1", fleet.TagOptions{})
		tg.Add(nameSets(0, 1, 2, 3, 4)...)
		r := tg.Wait()
		if !slices.Equal(r.Failed, []string{"i-0003"}) || r.Err == nil || !strings.Contains(r.Err.Error(), "UnauthorizedOperation") {
			t.Errorf("failed %v, err %v; want i-0003 failed with UnauthorizedOperation", r.Failed, r.Err)
		}
		if r.Tagged != 4 || api.tries["i-0001"] != 3 || api.tries["i-0002"] != 2 || api.tries["i-0003"] != 1 {
			t.Errorf("tagged %d, tries %v; want 4 tagged, NotFound retried twice, InternalError once, UnauthorizedOperation never", r.Tagged, api.tries)
		}
	})
}

// Sets for an instance already queued: the same tags are sent once, other tags replace them.
func TestTaggerSendsEachInstancesTagsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newTagEC2()
		tg := fleet.NewTagger(t.Context(), api, "us-east-1", fleet.TagOptions{})
		tg.Add(nameSets(shuffled(150)...)...)
		synctest.Wait() // the burst is sent; 50 wait for the refill
		tg.Add(nameSets(0, 149)...)
		tg.Add(fleet.TagSet{InstanceIDs: []string{"i-0148"}, Tags: []types.Tag{fleet.T(fleet.TagName, "renamed")}})
		r := tg.Wait()
		if r.Err != nil || r.Tagged != 150 || len(api.passed) != 150 {
			t.Fatalf("tagged %d, %d calls passed: %v", r.Tagged, len(api.passed), r.Err)
		}
		for _, c := range api.passed {
			if c.id == "i-0148" && c.name != "renamed" {
				t.Errorf("i-0148 named %q; the newer set should have replaced the queued one", c.name)
			}
		}
	})
}

func TestTaggerStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newTagEC2()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		tg := fleet.NewTagger(ctx, api, "us-east-1", fleet.TagOptions{})
		tg.Add(nameSets(shuffled(300)...)...)
		r := tg.Wait()
		if r.Tagged+len(r.Failed) != 300 || r.Tagged < 100 || r.Tagged > 160 || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("tagged %d, failed %d, err %v; want the burst and 5 s of refill tagged, the rest failed with the deadline",
				r.Tagged, len(r.Failed), r.Err)
		}
	})
}

func TestTaggersKeepOneBucketPerRegionAndProfile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		east, west := newTagEC2(), newTagEC2()
		ts := fleet.NewTaggers(t.Context(), fleet.TagOptions{})
		ts.For(east, "us-east-1", "").Add(nameSets(shuffled(200)...)...)
		ts.For(west, "us-west-2", "").Add(nameSets(shuffled(200)...)...)
		if ts.For(nil, "us-east-1", "") != ts.For(east, "us-east-1", "") {
			t.Fatal("a second For of the same region and profile gave another Tagger")
		}
		start := time.Now()
		rs := ts.Wait()
		if len(rs) != 2 || rs[0].Tagged != 200 || rs[1].Tagged != 200 {
			t.Fatalf("results %+v", rs)
		}
		// Each region has its own bucket: both end at 10 s, not 30 s.
		if d := time.Since(start); d > 11*time.Second {
			t.Errorf("two regions took %v; each bucket allows 200 calls in 10 s", d)
		}
	})
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"node-2", "node-10", -1},
		{"node-10", "node-2", 1},
		{"node-2", "node-2", 0},
		{"aws-east1-9", "aws-east2-0", -1},
		{"n-007", "n-7", 1},
		{"n-7", "n-008", -1},
		{"", "a", -1},
		{"a", "", 1},
		{"a1b2", "a1b10", -1},
		{"x", "y", -1},
	}
	for _, tt := range tests {
		if got := fleet.NaturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("NaturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzNaturalCompare(f *testing.F) {
	for _, s := range [][2]string{{"node-2", "node-10"}, {"a007", "a7"}, {"", "0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := fleet.NaturalCompare(a, b), fleet.NaturalCompare(b, a)
		if ab != -ba || (ab == 0) != (a == b) {
			t.Errorf("NaturalCompare(%q, %q) = %d, reversed %d", a, b, ab, ba)
		}
	})
}

// NameSets pairs ids in sorted order with nodes in the order given, as resume pairs them once it
// has the addresses, and leaves extra ids unnamed.
func TestNameSets(t *testing.T) {
	sets := fleet.NameSets([]string{"n-1", "n-2"}, []string{"i-c", "i-a", "i-b"})
	var got []string
	for _, s := range sets {
		got = append(got, s.InstanceIDs[0]+"="+aws.ToString(s.Tags[0].Value))
	}
	if want := []string{"i-a=n-1", "i-b=n-2"}; !slices.Equal(got, want) {
		t.Errorf("NameSets = %v, want %v", got, want)
	}
}
