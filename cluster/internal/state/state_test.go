package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	empty, err := s.Load()
	if err != nil || len(empty.Clusters) != 0 {
		t.Fatalf("empty load = %v, %v", empty, err)
	}
	f := &File{Provider: "embedded"}
	f.Put(Cluster{Name: "hub", Role: "hub", Ports: []int{1, 2}, Processes: []Process{{Name: "etcd", PID: 42, StartTime: 7}}})
	f.Put(Cluster{Name: "spoke-1", Role: "spoke"})
	f.Put(Cluster{Name: "hub", Role: "hub", Endpoint: "https://127.0.0.1:1"})
	if err := s.Save(f); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Clusters) != 2 || got.Clusters[0].Endpoint != "https://127.0.0.1:1" || got.Clusters[1].Name != "spoke-1" {
		t.Fatalf("round trip lost data: %+v", got.Clusters)
	}
	got.Remove("hub")
	if _, ok := got.Find("hub"); ok {
		t.Fatal("removed cluster still found")
	}
}

func TestDamagedStateNamesTheFileAndTheFix(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.Dir, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Load()
	// The command adds the fix (tether down, or remove the file).
	var ue *UnreadableError
	if err == nil || !strings.Contains(err.Error(), "state.json") || !errors.As(err, &ue) || ue.Err == nil {
		t.Fatalf("err = %v", err)
	}
}

func TestLockIsExclusive(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	unlock, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(); err == nil {
		t.Fatal("second lock succeeded while the first is held")
	}
	unlock()
	unlock2, err := s.Lock()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}
