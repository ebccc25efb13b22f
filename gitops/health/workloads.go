package health

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The rules below follow `kubectl rollout status` and Argo CD, so that what
// tether reports matches what users see from those tools.

func deploymentHealth(obj *unstructured.Unstructured) Status {
	var d appsv1.Deployment
	if bad := convert(obj, &d); bad != nil {
		return *bad
	}
	if d.Generation > d.Status.ObservedGeneration {
		return Status{Code: Progressing, Message: "Waiting for rollout to finish: observed deployment generation less than desired generation"}
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return Status{Code: Degraded, Message: fmt.Sprintf("Deployment %q exceeded its progress deadline", d.Name)}
		}
	}
	want := replicas(d.Spec.Replicas)
	var waiting string
	switch st := d.Status; {
	case st.UpdatedReplicas < want:
		waiting = fmt.Sprintf("%d out of %d new replicas have been updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		waiting = fmt.Sprintf("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		waiting = fmt.Sprintf("%d of %d updated replicas are available", st.AvailableReplicas, st.UpdatedReplicas)
	}
	// There is no Suspended code: a paused, finished rollout is simply
	// Healthy, while a paused, unfinished one stays Progressing with a
	// message saying why it will not move, since it needs someone to resume it
	// but is not broken.
	if d.Spec.Paused {
		if waiting != "" {
			return Status{Code: Progressing, Message: "Deployment is paused: " + waiting}
		}
		return Status{Code: Healthy, Message: "Deployment is paused"}
	}
	if waiting != "" {
		return Status{Code: Progressing, Message: "Waiting for rollout to finish: " + waiting}
	}
	return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d replicas available", d.Status.AvailableReplicas, want)}
}

func statefulSetHealth(obj *unstructured.Unstructured) Status {
	var s appsv1.StatefulSet
	if bad := convert(obj, &s); bad != nil {
		return *bad
	}
	st := s.Status
	if st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration {
		return Status{Code: Progressing, Message: "Waiting for statefulset spec update to be observed"}
	}
	want := replicas(s.Spec.Replicas)
	if st.ReadyReplicas < want {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for %d pods to be ready (%d/%d ready)", want-st.ReadyReplicas, st.ReadyReplicas, want)}
	}
	switch s.Spec.UpdateStrategy.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		// Pods only change when someone deletes them; waiting for the
		// revisions to converge would wait forever.
		return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d pods ready (OnDelete update strategy)", st.ReadyReplicas, want)}
	case appsv1.RollingUpdateStatefulSetStrategyType, "":
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			// A partitioned rollout is meant to stop at the partition, so
			// currentRevision never catches up with updateRevision.
			target := max(want-*ru.Partition, 0)
			if st.UpdatedReplicas < target {
				return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated", st.UpdatedReplicas, target)}
			}
			return Status{Code: Healthy, Message: fmt.Sprintf("Partitioned roll out complete: %d new pods have been updated", st.UpdatedReplicas)}
		}
	}
	if st.UpdateRevision != "" && st.CurrentRevision != st.UpdateRevision {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for rolling update to complete: %d out of %d pods at revision %s", st.UpdatedReplicas, want, st.UpdateRevision)}
	}
	return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d pods ready", st.ReadyReplicas, want)}
}

func daemonSetHealth(obj *unstructured.Unstructured) Status {
	var ds appsv1.DaemonSet
	if bad := convert(obj, &ds); bad != nil {
		return *bad
	}
	st := ds.Status
	if ds.Generation > st.ObservedGeneration {
		return Status{Code: Progressing, Message: "Waiting for daemon set spec update to be observed"}
	}
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		// As for StatefulSets: old pods stay until deleted by hand.
		return Status{Code: Healthy, Message: fmt.Sprintf("%d out of %d new pods have been updated (OnDelete update strategy)", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)}
	}
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for daemon set rollout to finish: %d out of %d new pods have been updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)}
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for daemon set rollout to finish: %d of %d updated pods are available", st.NumberAvailable, st.DesiredNumberScheduled)}
	}
	return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d pods available", st.NumberAvailable, st.DesiredNumberScheduled)}
}

func replicaSetHealth(obj *unstructured.Unstructured) Status {
	var rs appsv1.ReplicaSet
	if bad := convert(obj, &rs); bad != nil {
		return *bad
	}
	if rs.Generation > rs.Status.ObservedGeneration {
		return Status{Code: Progressing, Message: "Waiting for rollout to finish: observed replica set generation less than desired generation"}
	}
	for _, c := range rs.Status.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
			return Status{Code: Degraded, Message: or(c.Message, "Replica failure: "+c.Reason)}
		}
	}
	want := replicas(rs.Spec.Replicas)
	if rs.Status.AvailableReplicas < want {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for rollout to finish: %d out of %d replicas are available", rs.Status.AvailableReplicas, want)}
	}
	return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d replicas available", rs.Status.AvailableReplicas, want)}
}

// replicas applies the API server's default of 1 for an unset spec.replicas.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
