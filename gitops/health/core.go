package health

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// badWaitingReason recognises container states that will not clear by
// waiting: the kubelet keeps retrying, but only a change to the spec, the
// image or the cluster fixes them, so they count as Degraded even while the
// pod is still Pending.
func badWaitingReason(reason string) bool {
	switch reason {
	case "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull",
		"InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
		return true
	}
	return false
}

func podHealth(obj *unstructured.Unstructured) Status {
	var pod corev1.Pod
	if bad := convert(obj, &pod); bad != nil {
		return *bad
	}
	st := pod.Status
	switch st.Phase {
	case corev1.PodSucceeded:
		return Status{Code: Healthy, Message: or(st.Message, "Pod completed")}
	case corev1.PodFailed:
		return Status{Code: Degraded, Message: or(st.Message, or(terminatedReason(st), "Pod failed"))}
	case corev1.PodPending, corev1.PodRunning:
		if s := waitingProblem(st); s != "" {
			return Status{Code: Degraded, Message: s}
		}
		if st.Phase == corev1.PodPending {
			return Status{Code: Progressing, Message: or(st.Message, or(st.Reason, "Pod is pending"))}
		}
		// A pod that is meant to exit (Never/OnFailure) is only done once it
		// has Succeeded; while it runs, it is still on its way.
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
			return Status{Code: Progressing, Message: "Pod is running to completion"}
		}
		ready, total := 0, len(st.ContainerStatuses)
		for _, c := range st.ContainerStatuses {
			if c.Ready {
				ready++
			}
		}
		if total == 0 || ready < total {
			return Status{Code: Progressing, Message: fmt.Sprintf("%d/%d containers ready", ready, total)}
		}
		return Status{Code: Healthy, Message: fmt.Sprintf("%d/%d containers ready", ready, total)}
	}
	return Status{Code: Unknown, Message: or(st.Message, fmt.Sprintf("Pod phase is %q", st.Phase))}
}

// waitingProblem returns "container: Reason: message" for the first
// container stuck in a state that needs fixing, init containers first since
// they block the rest.
func waitingProblem(st corev1.PodStatus) string {
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for _, c := range list {
			if w := c.State.Waiting; w != nil && badWaitingReason(w.Reason) {
				msg := fmt.Sprintf("container %s: %s", c.Name, w.Reason)
				if w.Message != "" {
					msg += ": " + firstLine(w.Message)
				}
				return msg
			}
		}
	}
	return ""
}

func terminatedReason(st corev1.PodStatus) string {
	for _, c := range st.ContainerStatuses {
		if t := c.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("container %s: %s (exit code %d)", c.Name, or(t.Reason, "Error"), t.ExitCode)
		}
	}
	return st.Reason
}

// firstLine keeps messages short: kubelet messages can carry whole
// registry responses.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func serviceHealth(obj *unstructured.Unstructured) Status {
	var svc corev1.Service
	if bad := convert(obj, &svc); bad != nil {
		return *bad
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) == 0 {
		return Status{Code: Progressing, Message: "Waiting for load balancer address"}
	}
	return Status{Code: Healthy}
}

func pvcHealth(obj *unstructured.Unstructured) Status {
	var pvc corev1.PersistentVolumeClaim
	if bad := convert(obj, &pvc); bad != nil {
		return *bad
	}
	switch pvc.Status.Phase {
	case corev1.ClaimBound:
		return Status{Code: Healthy, Message: "Bound"}
	case corev1.ClaimLost:
		return Status{Code: Degraded, Message: "Bound volume is lost"}
	case corev1.ClaimPending:
		return Status{Code: Progressing, Message: "Waiting for a volume to be bound"}
	}
	return Status{Code: Unknown, Message: fmt.Sprintf("Claim phase is %q", pvc.Status.Phase)}
}

func namespaceHealth(obj *unstructured.Unstructured) Status {
	var ns corev1.Namespace
	if bad := convert(obj, &ns); bad != nil {
		return *bad
	}
	if ns.Status.Phase == corev1.NamespaceTerminating {
		return Status{Code: Progressing, Message: "Namespace is terminating"}
	}
	return Status{Code: Healthy}
}

func jobHealth(obj *unstructured.Unstructured) Status {
	var job batchv1.Job
	if bad := convert(obj, &job); bad != nil {
		return *bad
	}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return Status{Code: Healthy, Message: or(c.Message, "Job completed")}
		// FailureTarget is set as soon as the Job is doomed, before its
		// pods are cleaned up and Failed is added.
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			return Status{Code: Degraded, Message: or(c.Message, or(c.Reason, "Job failed"))}
		}
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return Status{Code: Progressing, Message: "Job is suspended"}
	}
	return Status{Code: Progressing, Message: fmt.Sprintf("Job is running: %d active, %d succeeded, %d failed", job.Status.Active, job.Status.Succeeded, job.Status.Failed)}
}
