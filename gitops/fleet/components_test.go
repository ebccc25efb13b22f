package fleet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/cluster/process"
)

// A supervised component's state and restarts come from its supervisor's
// status file: a live child is running, a crashed one restarting, and a
// dead supervisor is DEAD whatever the file says.
func TestProcessStatus(t *testing.T) {
	_, self, err := process.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(s process.Status) string {
		path := filepath.Join(dir, "c.status.json")
		data, _ := json.Marshal(s)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	exit := &process.Exit{Code: -1, Signal: "killed", At: time.Now()}
	sup := process.Record{Name: "principal", PID: os.Getpid(), StartTime: self}

	sup.Status = write(process.Status{PID: os.Getpid(), StartTime: self, Restarts: 2, LastExit: exit})
	c := processStatus(sup)
	if c.State != StateRunning || c.Restarts != 2 || c.ChildPID != os.Getpid() || !strings.Contains(c.LastExit, "signal killed") {
		t.Errorf("live child: %+v", c)
	}
	sup.Status = write(process.Status{Restarts: 3, LastExit: exit})
	if c := processStatus(sup); c.State != StateRestarting || c.Restarts != 3 || c.ChildPID != 0 {
		t.Errorf("child waiting for its restart: %+v", c)
	}
	dead := sup
	dead.StartTime++
	if c := processStatus(dead); c.State != StateDead || c.Alive {
		t.Errorf("dead supervisor: %+v", c)
	}
}

func TestPodStatus(t *testing.T) {
	crashing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tether-agent-1"}, Status: corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{
			RestartCount:         4,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}},
		}},
	}}
	if c := podStatus("spoke-1", crashing); c.State != "CrashLoopBackOff" || c.Restarts != 4 || c.Cluster != "spoke-1" || !strings.Contains(c.LastExit, "137") {
		t.Errorf("crashing pod: %+v", c)
	}
	running := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 1}}}}
	if c := podStatus("hub", running); c.State != StateRunning || c.Restarts != 1 {
		t.Errorf("running pod: %+v", c)
	}
}
