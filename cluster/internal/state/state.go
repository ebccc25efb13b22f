package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tether-dev/tether/cluster/process"
)

// Version is bumped when the file's meaning changes.
const Version = 1

// File is the on-disk record of one workbench.
type File struct {
	Version  int    `json:"version"`
	Provider string `json:"provider"`
	// KindNodeImage is the node image the user asked for (kind only), so
	// that spokes added later boot the same image as the hub.
	KindNodeImage string    `json:"kindNodeImage,omitempty"`
	Clusters      []Cluster `json:"clusters"`
}

// Cluster is one hub or spoke.
type Cluster struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Provider string `json:"provider"`
	// Endpoint is the API server URL as seen from this machine.
	Endpoint string `json:"endpoint"`
	// InternalEndpoint is the API server URL as seen from the other clusters
	// (the kind network for kind; loopback for embedded).
	InternalEndpoint string `json:"internalEndpoint,omitempty"`
	// Kubeconfig is the admin kubeconfig file tether keeps for this cluster.
	Kubeconfig string `json:"kubeconfig"`
	// Context is the user's context an existing cluster was named by.
	Context string `json:"context,omitempty"`
	// Dir holds the cluster's data, certificates and logs (embedded).
	Dir string `json:"dir,omitempty"`
	// OwnsSystemNamespace records that tether created its namespace in the
	// cluster, so down on an existing cluster removes only what tether made.
	OwnsSystemNamespace bool      `json:"ownsSystemNamespace,omitempty"`
	Ports               []int     `json:"ports,omitempty"`
	Processes           []Process `json:"processes,omitempty"`
	Created             time.Time `json:"created"`
}

// Process is a child process of an embedded cluster.
type Process = process.Record

// Find returns the named cluster.
func (f *File) Find(name string) (*Cluster, bool) {
	for i := range f.Clusters {
		if f.Clusters[i].Name == name {
			return &f.Clusters[i], true
		}
	}
	return nil, false
}

// Put adds or replaces a cluster, keeping the hub first and spokes in the
// order they were added.
func (f *File) Put(c Cluster) {
	for i := range f.Clusters {
		if f.Clusters[i].Name == c.Name {
			f.Clusters[i] = c
			return
		}
	}
	f.Clusters = append(f.Clusters, c)
}

// Remove drops the named cluster from the record.
func (f *File) Remove(name string) {
	out := f.Clusters[:0]
	for _, c := range f.Clusters {
		if c.Name != name {
			out = append(out, c)
		}
	}
	f.Clusters = out
}

// Store reads and writes the state file in a folder.
type Store struct {
	Dir string
}

func (s Store) path() string { return filepath.Join(s.Dir, "state.json") }

// Load returns the record, or an empty one if none exists.
func (s Store) Load() (*File, error) {
	data, err := os.ReadFile(s.path())
	if errors.Is(err, os.ErrNotExist) {
		return &File{Version: Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read workbench state: %w", err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &UnreadableError{Path: s.path(), Err: err}
	}
	if f.Version != Version {
		return nil, &UnreadableError{Path: s.path(), Version: f.Version}
	}
	return &f, nil
}

// Save writes the record atomically, so a crash mid-write never leaves a
// half-written file that would make the workbench unrecoverable.
func (s Store) Save(f *File) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	f.Version = Version
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, "state-*.json")
	if err != nil {
		return fmt.Errorf("write workbench state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write workbench state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), s.path()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write workbench state: %w", err)
	}
	return nil
}

// Delete removes the state file.
func (s Store) Delete() error {
	if err := os.Remove(s.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove workbench state: %w", err)
	}
	return nil
}

// Lock takes an exclusive lock on the workbench so two `tether up` runs
// cannot start the same clusters twice. The returned func releases it.
func (s Store) Lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open workbench lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another tether is changing the workbench in %s; wait for it to finish", s.Dir)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// UnreadableError says the state file at Path cannot be used: it is
// damaged (Err says how), or was written in another Version of its
// format, by another tether.
type UnreadableError struct {
	Path    string
	Version int
	Err     error
}

func (e *UnreadableError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("workbench state %s is damaged (%v)", e.Path, e.Err)
	}
	return fmt.Sprintf("workbench state %s has version %d, this tether understands %d", e.Path, e.Version, Version)
}
