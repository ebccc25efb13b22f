package health

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	return u
}

type tcase struct {
	name     string
	manifest string
	code     Code
	// msg must equal the message when it starts with "=", else be contained in it.
	msg string
}

func run(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Assess(parse(t, tc.manifest))
			if got.Code != tc.code {
				t.Fatalf("code = %s (%q), want %s", got.Code, got.Message, tc.code)
			}
			if exact, ok := strings.CutPrefix(tc.msg, "="); ok {
				if got.Message != exact {
					t.Fatalf("message = %q, want %q", got.Message, exact)
				}
			} else if !strings.Contains(got.Message, tc.msg) {
				t.Fatalf("message = %q, want it to contain %q", got.Message, tc.msg)
			}
		})
	}
}

func TestAssessNil(t *testing.T) {
	if got := Assess(nil); got.Code != Missing {
		t.Fatalf("got %+v", got)
	}
}

func TestAssessPendingDeletion(t *testing.T) {
	run(t, []tcase{{
		name: "deployment with deletionTimestamp",
		manifest: `apiVersion: apps/v1
kind: Deployment
metadata: {name: d, generation: 1, deletionTimestamp: "2024-01-01T00:00:00Z"}
spec: {replicas: 1}
status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1}`,
		code: Progressing, msg: "=Pending deletion",
	}})
}

const deployHead = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, generation: 2}\n"

func TestAssessDeployment(t *testing.T) {
	run(t, []tcase{
		{
			name:     "rolled out",
			manifest: deployHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3}",
			code:     Healthy, msg: "=3/3 replicas available",
		},
		{
			name:     "replicas defaults to 1",
			manifest: deployHead + "spec: {}\nstatus: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1}",
			code:     Healthy, msg: "=1/1 replicas available",
		},
		{
			name:     "scaled to zero",
			manifest: deployHead + "spec: {replicas: 0}\nstatus: {observedGeneration: 2}",
			code:     Healthy, msg: "=0/0 replicas available",
		},
		{
			name:     "generation not observed",
			manifest: deployHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3}",
			code:     Progressing, msg: "observed deployment generation less than desired generation",
		},
		{
			name:     "new replicas not updated",
			manifest: deployHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 3}",
			code:     Progressing, msg: "=Waiting for rollout to finish: 1 out of 3 new replicas have been updated",
		},
		{
			name:     "old replicas pending termination",
			manifest: deployHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3}",
			code:     Progressing, msg: "=Waiting for rollout to finish: 1 old replicas are pending termination",
		},
		{
			name:     "updated replicas not available",
			manifest: deployHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 2}",
			code:     Progressing, msg: "=Waiting for rollout to finish: 2 of 3 updated replicas are available",
		},
		{
			name: "progress deadline exceeded",
			manifest: deployHead + `spec: {replicas: 3}
status:
  observedGeneration: 2
  replicas: 3
  updatedReplicas: 1
  availableReplicas: 2
  conditions:
  - {type: Available, status: "True"}
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded}`,
			code: Degraded, msg: `=Deployment "web" exceeded its progress deadline`,
		},
		{
			name: "progressing condition without deadline",
			manifest: deployHead + `spec: {replicas: 1}
status:
  observedGeneration: 2
  replicas: 1
  updatedReplicas: 1
  availableReplicas: 1
  conditions:
  - {type: Progressing, status: "True", reason: NewReplicaSetAvailable}`,
			code: Healthy,
		},
		{
			name:     "paused and done",
			manifest: deployHead + "spec: {replicas: 2, paused: true}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}",
			code:     Healthy, msg: "=Deployment is paused",
		},
		{
			name:     "paused mid rollout",
			manifest: deployHead + "spec: {replicas: 2, paused: true}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2}",
			code:     Progressing, msg: "=Deployment is paused: 1 out of 2 new replicas have been updated",
		},
		{
			name:     "malformed status",
			manifest: deployHead + "spec: {replicas: 2}\nstatus: {replicas: many}",
			code:     Unknown, msg: "cannot read Deployment status",
		},
	})
}

const stsHead = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, generation: 3}\n"

func TestAssessStatefulSet(t *testing.T) {
	run(t, []tcase{
		{
			name:     "rolled out",
			manifest: stsHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 3, replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentRevision: db-2, updateRevision: db-2}",
			code:     Healthy, msg: "=3/3 pods ready",
		},
		{
			name:     "no status yet",
			manifest: stsHead + "spec: {replicas: 3}",
			code:     Progressing, msg: "spec update to be observed",
		},
		{
			name:     "generation not observed",
			manifest: stsHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 2, readyReplicas: 3}",
			code:     Progressing, msg: "spec update to be observed",
		},
		{
			name:     "pods not ready",
			manifest: stsHead + "spec: {replicas: 3}\nstatus: {observedGeneration: 3, replicas: 3, readyReplicas: 1}",
			code:     Progressing, msg: "=Waiting for 2 pods to be ready (1/3 ready)",
		},
		{
			name:     "rolling update in progress",
			manifest: stsHead + "spec: {replicas: 3, updateStrategy: {type: RollingUpdate}}\nstatus: {observedGeneration: 3, replicas: 3, readyReplicas: 3, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}",
			code:     Progressing, msg: "=Waiting for rolling update to complete: 1 out of 3 pods at revision db-2",
		},
		{
			name:     "partition not reached",
			manifest: stsHead + "spec: {replicas: 5, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 3}}}\nstatus: {observedGeneration: 3, replicas: 5, readyReplicas: 5, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}",
			code:     Progressing, msg: "=Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated",
		},
		{
			name:     "partition reached, revisions differ by design",
			manifest: stsHead + "spec: {replicas: 5, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 3}}}\nstatus: {observedGeneration: 3, replicas: 5, readyReplicas: 5, updatedReplicas: 2, currentRevision: db-1, updateRevision: db-2}",
			code:     Healthy, msg: "=Partitioned roll out complete: 2 new pods have been updated",
		},
		{
			name:     "partition 0 behaves like a plain rolling update",
			manifest: stsHead + "spec: {replicas: 2, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}}\nstatus: {observedGeneration: 3, replicas: 2, readyReplicas: 2, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}",
			code:     Progressing, msg: "rolling update to complete",
		},
		{
			name:     "OnDelete never converges by itself",
			manifest: stsHead + "spec: {replicas: 2, updateStrategy: {type: OnDelete}}\nstatus: {observedGeneration: 3, replicas: 2, readyReplicas: 2, currentRevision: db-1, updateRevision: db-2}",
			code:     Healthy, msg: "OnDelete",
		},
	})
}

const dsHead = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, generation: 4}\n"

func TestAssessDaemonSet(t *testing.T) {
	run(t, []tcase{
		{
			name:     "rolled out",
			manifest: dsHead + "spec: {}\nstatus: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}",
			code:     Healthy, msg: "=3/3 pods available",
		},
		{
			name:     "generation not observed",
			manifest: dsHead + "spec: {}\nstatus: {observedGeneration: 3, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}",
			code:     Progressing, msg: "spec update to be observed",
		},
		{
			name:     "not updated",
			manifest: dsHead + "spec: {}\nstatus: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 3}",
			code:     Progressing, msg: "=Waiting for daemon set rollout to finish: 1 out of 3 new pods have been updated",
		},
		{
			name:     "not available",
			manifest: dsHead + "spec: {}\nstatus: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}",
			code:     Progressing, msg: "=Waiting for daemon set rollout to finish: 2 of 3 updated pods are available",
		},
		{
			name:     "OnDelete",
			manifest: dsHead + "spec: {updateStrategy: {type: OnDelete}}\nstatus: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 3}",
			code:     Healthy, msg: "OnDelete",
		},
	})
}

const rsHead = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-abc, generation: 1}\n"

func TestAssessReplicaSet(t *testing.T) {
	run(t, []tcase{
		{
			name:     "available",
			manifest: rsHead + "spec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, availableReplicas: 2}",
			code:     Healthy, msg: "=2/2 replicas available",
		},
		{
			name:     "generation not observed",
			manifest: rsHead + "spec: {replicas: 2}\nstatus: {observedGeneration: 0}",
			code:     Progressing, msg: "generation",
		},
		{
			name:     "not available",
			manifest: rsHead + "spec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, availableReplicas: 1}",
			code:     Progressing, msg: "=Waiting for rollout to finish: 1 out of 2 replicas are available",
		},
		{
			name: "replica failure",
			manifest: rsHead + `spec: {replicas: 2}
status:
  observedGeneration: 1
  conditions:
  - {type: ReplicaFailure, status: "True", reason: FailedCreate, message: 'pods "web-abc-" is forbidden: exceeded quota'}`,
			code: Degraded, msg: `=pods "web-abc-" is forbidden: exceeded quota`,
		},
		{
			name:     "replica failure cleared",
			manifest: rsHead + "spec: {replicas: 1}\nstatus: {observedGeneration: 1, availableReplicas: 1, conditions: [{type: ReplicaFailure, status: 'False'}]}",
			code:     Healthy,
		},
	})
}

const podHead = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"

func TestAssessPod(t *testing.T) {
	run(t, []tcase{
		{
			name:     "running and ready",
			manifest: podHead + "spec: {containers: [{name: a}, {name: b}]}\nstatus: {phase: Running, containerStatuses: [{name: a, ready: true}, {name: b, ready: true}]}",
			code:     Healthy, msg: "=2/2 containers ready",
		},
		{
			name:     "running not ready",
			manifest: podHead + "spec: {containers: [{name: a}, {name: b}]}\nstatus: {phase: Running, containerStatuses: [{name: a, ready: true}, {name: b, ready: false}]}",
			code:     Progressing, msg: "=1/2 containers ready",
		},
		{
			name: "running in crash loop",
			manifest: podHead + `spec: {containers: [{name: app}]}
status:
  phase: Running
  containerStatuses:
  - name: app
    ready: false
    state: {waiting: {reason: CrashLoopBackOff, message: "back-off 5m0s restarting failed container"}}`,
			code: Degraded, msg: "=container app: CrashLoopBackOff: back-off 5m0s restarting failed container",
		},
		{
			name:     "pending image pull backoff",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Pending, containerStatuses: [{name: app, state: {waiting: {reason: ImagePullBackOff}}}]}",
			code:     Degraded, msg: "=container app: ImagePullBackOff",
		},
		{
			name:     "pending err image pull in init container",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Pending, initContainerStatuses: [{name: init, state: {waiting: {reason: ErrImagePull, message: \"rpc error\\nmore\"}}}]}",
			code:     Degraded, msg: "=container init: ErrImagePull: rpc error",
		},
		{
			name:     "pending creating",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Pending, containerStatuses: [{name: app, state: {waiting: {reason: ContainerCreating}}}]}",
			code:     Progressing, msg: "=Pod is pending",
		},
		{
			name:     "pending unschedulable",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Pending, message: '0/1 nodes are available'}",
			code:     Progressing, msg: "=0/1 nodes are available",
		},
		{
			name:     "succeeded",
			manifest: podHead + "spec: {restartPolicy: Never, containers: [{name: app}]}\nstatus: {phase: Succeeded}",
			code:     Healthy, msg: "=Pod completed",
		},
		{
			name:     "failed",
			manifest: podHead + "spec: {restartPolicy: Never, containers: [{name: app}]}\nstatus: {phase: Failed, containerStatuses: [{name: app, state: {terminated: {exitCode: 137, reason: OOMKilled}}}]}",
			code:     Degraded, msg: "=container app: OOMKilled (exit code 137)",
		},
		{
			name:     "failed with message",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Failed, reason: Evicted, message: 'The node was low on resource: memory.'}",
			code:     Degraded, msg: "=The node was low on resource: memory.",
		},
		{
			name:     "run-to-completion pod still running",
			manifest: podHead + "spec: {restartPolicy: OnFailure, containers: [{name: app}]}\nstatus: {phase: Running, containerStatuses: [{name: app, ready: true}]}",
			code:     Progressing, msg: "=Pod is running to completion",
		},
		{
			name:     "unknown phase",
			manifest: podHead + "spec: {containers: [{name: app}]}\nstatus: {phase: Unknown}",
			code:     Unknown,
		},
		{
			name:     "no status yet",
			manifest: podHead + "spec: {containers: [{name: app}]}",
			code:     Unknown,
		},
	})
}

func TestAssessService(t *testing.T) {
	const head = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	run(t, []tcase{
		{name: "cluster ip", manifest: head + "spec: {type: ClusterIP}", code: Healthy},
		{name: "no type", manifest: head + "spec: {}", code: Healthy},
		{name: "load balancer pending", manifest: head + "spec: {type: LoadBalancer}\nstatus: {loadBalancer: {}}", code: Progressing, msg: "=Waiting for load balancer address"},
		{name: "load balancer ready", manifest: head + "spec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}", code: Healthy},
	})
}

func TestAssessJob(t *testing.T) {
	const head = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n"
	run(t, []tcase{
		{name: "complete", manifest: head + "status: {succeeded: 1, conditions: [{type: Complete, status: 'True'}]}", code: Healthy, msg: "=Job completed"},
		{name: "failed", manifest: head + "status: {failed: 6, conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}]}", code: Degraded, msg: "=Job has reached the specified backoff limit"},
		{name: "failure target", manifest: head + "status: {conditions: [{type: FailureTarget, status: 'True', reason: DeadlineExceeded}]}", code: Degraded, msg: "=DeadlineExceeded"},
		{name: "running", manifest: head + "status: {active: 1}", code: Progressing, msg: "=Job is running: 1 active, 0 succeeded, 0 failed"},
		{name: "false conditions ignored", manifest: head + "status: {active: 1, conditions: [{type: Failed, status: 'False'}]}", code: Progressing},
		{name: "suspended", manifest: head + "spec: {suspend: true}\nstatus: {conditions: [{type: Suspended, status: 'True'}]}", code: Progressing, msg: "=Job is suspended"},
	})
}

func TestAssessPVC(t *testing.T) {
	const head = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n"
	run(t, []tcase{
		{name: "bound", manifest: head + "status: {phase: Bound}", code: Healthy},
		{name: "lost", manifest: head + "status: {phase: Lost}", code: Degraded},
		{name: "pending", manifest: head + "status: {phase: Pending}", code: Progressing},
		{name: "no phase", manifest: head + "spec: {}", code: Unknown},
	})
}

func TestAssessNamespace(t *testing.T) {
	const head = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"
	run(t, []tcase{
		{name: "active", manifest: head + "status: {phase: Active}", code: Healthy},
		{name: "terminating", manifest: head + "status: {phase: Terminating}", code: Progressing, msg: "=Namespace is terminating"},
		{name: "no status", manifest: head, code: Healthy},
	})
}

func TestAssessGeneric(t *testing.T) {
	const head = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, generation: 2}\n"
	run(t, []tcase{
		{name: "configmap", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}", code: Healthy},
		{name: "secret", manifest: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}", code: Healthy},
		{name: "role", manifest: "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: []", code: Healthy},
		{name: "empty status", manifest: head + "status: {}", code: Healthy},
		{name: "status without conditions", manifest: head + "status: {phase: Whatever}", code: Healthy},
		{name: "ready true", manifest: head + "status: {conditions: [{type: Ready, status: 'True', message: all good}]}", code: Healthy, msg: "=all good"},
		{name: "ready false", manifest: head + "status: {conditions: [{type: Ready, status: 'False', reason: InvalidSpec, message: bad url}]}", code: Degraded, msg: "=bad url"},
		{name: "ready false without message", manifest: head + "status: {conditions: [{type: Ready, status: 'False'}]}", code: Degraded, msg: "=Not ready"},
		{name: "ready false progressing reason", manifest: head + "status: {conditions: [{type: Ready, status: 'False', reason: Progressing, message: rolling}]}", code: Progressing, msg: "=rolling"},
		{name: "ready false pending reason", manifest: head + "status: {conditions: [{type: Ready, status: 'False', reason: WaitingForDependencies}]}", code: Progressing, msg: "=WaitingForDependencies"},
		{name: "ready false while reconciling", manifest: head + "status: {conditions: [{type: Ready, status: 'False', reason: Failed}, {type: Reconciling, status: 'True'}]}", code: Progressing},
		{name: "ready unknown", manifest: head + "status: {conditions: [{type: Ready, status: Unknown}]}", code: Progressing, msg: "=Ready is unknown"},
		{name: "available true", manifest: "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: a}\nstatus: {conditions: [{type: Available, status: 'True'}]}", code: Healthy},
		{name: "available false", manifest: head + "status: {conditions: [{type: Available, status: 'False', reason: MissingEndpoints}]}", code: Degraded, msg: "=MissingEndpoints"},
		{name: "ready wins over available", manifest: head + "status: {conditions: [{type: Available, status: 'False'}, {type: Ready, status: 'True'}]}", code: Healthy},
		{name: "stalled beats ready", manifest: head + "status: {conditions: [{type: Ready, status: 'True'}, {type: Stalled, status: 'True', message: quota exceeded}]}", code: Degraded, msg: "=quota exceeded"},
		{name: "stalled false ignored", manifest: head + "status: {conditions: [{type: Stalled, status: 'False'}, {type: Ready, status: 'True'}]}", code: Healthy},
		{name: "reconciling only", manifest: head + "status: {conditions: [{type: Reconciling, status: 'True', reason: Updating}]}", code: Progressing, msg: "=Updating"},
		{name: "generation not observed", manifest: head + "status: {observedGeneration: 1, conditions: [{type: Ready, status: 'True'}]}", code: Progressing, msg: "=Waiting for the controller to observe generation 2"},
		{name: "generation observed", manifest: head + "status: {observedGeneration: 2, conditions: [{type: Ready, status: 'True'}]}", code: Healthy},
		{name: "other conditions only", manifest: head + "status: {conditions: [{type: Synced, status: 'False'}]}", code: Healthy},
		{name: "deployment of another group", manifest: "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: d}\nstatus: {conditions: [{type: Ready, status: 'False', reason: Broken}]}", code: Degraded},
	})
}

func TestWorst(t *testing.T) {
	order := []Code{Healthy, Progressing, Unknown, Missing, Degraded}
	for i, a := range order {
		for j, b := range order {
			want := a
			if j > i {
				want = b
			}
			if got := Worst(a, b); got != want {
				t.Errorf("Worst(%s, %s) = %s, want %s", a, b, got, want)
			}
			if got := IsWorse(a, b); got != (i > j) {
				t.Errorf("IsWorse(%s, %s) = %v", a, b, got)
			}
		}
	}
	if got := Worst(Healthy, Code("Bogus")); got != "Bogus" {
		t.Errorf("unrecognised code should rank as Unknown, got %s", got)
	}
	if got := Worst(Code("Bogus"), Missing); got != Missing {
		t.Errorf("got %s", got)
	}
	// Aggregation over many objects starts from Healthy.
	agg := Healthy
	for _, c := range []Code{Healthy, Progressing, Healthy, Missing, Progressing} {
		agg = Worst(agg, c)
	}
	if agg != Missing {
		t.Errorf("aggregate = %s", agg)
	}
}

func TestCodeStrings(t *testing.T) {
	for c, s := range map[Code]string{Healthy: "Healthy", Progressing: "Progressing", Degraded: "Degraded", Missing: "Missing", Unknown: "Unknown"} {
		if string(c) != s {
			t.Errorf("%q != %q", c, s)
		}
	}
}
