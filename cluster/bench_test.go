package cluster_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster"
)

// BenchmarkEmbeddedUp measures `up` of a hub and two spokes on the embedded
// provider with the control-plane binaries already cached, and the resident
// memory each cluster's processes hold once ready. Run it with
// `go tool task bench` (one pass: -benchtime 1x).
func BenchmarkEmbeddedUp(b *testing.B) {
	ctx := context.Background()
	cache, err := cluster.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	newWB := func() *cluster.Workbench {
		dir := b.TempDir()
		wb, err := cluster.New(cluster.Options{StateDir: filepath.Join(dir, "state"), CacheDir: cache, Kubeconfig: filepath.Join(dir, "kubeconfig")})
		if err != nil {
			b.Fatal(err)
		}
		return wb
	}
	cfg := cluster.DefaultConfig()
	cfg.Provider = cluster.ProviderEmbedded

	// Warm-up outside the timer: compiles the binaries on a fresh machine.
	warm := newWB()
	if _, err := warm.Up(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	if err := warm.Down(ctx); err != nil {
		b.Fatal(err)
	}

	var total time.Duration
	var rssKiB, clusters int64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		wb := newWB()
		start := time.Now()
		b.StartTimer()
		if _, err := wb.Up(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		total += time.Since(start)
		_, st, err := wb.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range st {
			if !c.Ready {
				b.Fatalf("%s not ready after up: %s", c.Name, c.Reason)
			}
			clusters++
			for _, p := range c.Processes {
				rssKiB += vmRSS(p.PID)
			}
		}
		if err := wb.Down(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "s/up")
	b.ReportMetric(float64(rssKiB)/1024/float64(clusters), "MiB-rss/cluster")
}

func vmRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
