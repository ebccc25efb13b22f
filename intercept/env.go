package intercept

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// WorkloadEnv resolves the environment of the intercepted workload: the
// env and envFrom of the container serving the intercepted port in one of
// the original pods, with ConfigMap, Secret and field references read
// through the API, so a local process starts configured like the pod.
func WorkloadEnv(ctx context.Context, c kubernetes.Interface, rec *record.Record) ([]string, error) {
	pods, err := c.CoreV1().Pods(rec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(rec.OriginalSelector).String()})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no pod matches the original selector of %s/%s", rec.Namespace, rec.Service)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	pod := &pods.Items[0]
	var target int32
	for _, p := range rec.Ports {
		if p.Port == rec.Port {
			target = p.TargetPort
		}
	}
	ctr := &pod.Spec.Containers[0]
	for i := range pod.Spec.Containers {
		for _, cp := range pod.Spec.Containers[i].Ports {
			if cp.ContainerPort == target {
				ctr = &pod.Spec.Containers[i]
			}
		}
	}
	env := map[string]string{}
	for _, from := range ctr.EnvFrom {
		data, err := sourceData(ctx, c, pod.Namespace, from)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expand(e.Value, env)
			continue
		}
		v, ok, err := valueFrom(ctx, c, pod, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			env[e.Name] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// expand applies Kubernetes' $(VAR) references to earlier variables.
func expand(s string, env map[string]string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '(' {
			if j := indexByte(s[i+2:], ')'); j >= 0 {
				name := s[i+2 : i+2+j]
				if v, ok := env[name]; ok {
					out = append(out, v...)
					i += j + 2
					continue
				}
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

func indexByte(s string, b byte) int {
	for i := range len(s) {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func sourceData(ctx context.Context, c kubernetes.Interface, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	optional := func(o *bool) bool { return o != nil && *o }
	switch {
	case from.ConfigMapRef != nil:
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
		if err != nil {
			if optional(from.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("envFrom configmap %s: %w", from.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := c.CoreV1().Secrets(ns).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if err != nil {
			if optional(from.SecretRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	}
	return nil, nil
}

func valueFrom(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, v *corev1.EnvVarSource) (string, bool, error) {
	optional := func(o *bool) bool { return o != nil && *o }
	switch {
	case v.ConfigMapKeyRef != nil:
		cm, err := c.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMapKeyRef.Name, metav1.GetOptions{})
		if err != nil {
			return "", false, ignoreOptional(err, optional(v.ConfigMapKeyRef.Optional))
		}
		val, ok := cm.Data[v.ConfigMapKeyRef.Key]
		if !ok && !optional(v.ConfigMapKeyRef.Optional) {
			return "", false, fmt.Errorf("configmap %s has no key %s", cm.Name, v.ConfigMapKeyRef.Key)
		}
		return val, ok, nil
	case v.SecretKeyRef != nil:
		s, err := c.CoreV1().Secrets(pod.Namespace).Get(ctx, v.SecretKeyRef.Name, metav1.GetOptions{})
		if err != nil {
			return "", false, ignoreOptional(err, optional(v.SecretKeyRef.Optional))
		}
		val, ok := s.Data[v.SecretKeyRef.Key]
		if !ok && !optional(v.SecretKeyRef.Optional) {
			return "", false, fmt.Errorf("secret %s has no key %s", s.Name, v.SecretKeyRef.Key)
		}
		return string(val), ok, nil
	case v.FieldRef != nil:
		switch v.FieldRef.FieldPath {
		case "metadata.name":
			return pod.Name, true, nil
		case "metadata.namespace":
			return pod.Namespace, true, nil
		case "status.podIP":
			return pod.Status.PodIP, true, nil
		case "spec.nodeName":
			return pod.Spec.NodeName, true, nil
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName, true, nil
		}
		return "", false, nil
	}
	// resourceFieldRef: limits have no meaning for a local process.
	return "", false, nil
}

func ignoreOptional(err error, optional bool) error {
	if optional {
		return nil
	}
	return err
}
