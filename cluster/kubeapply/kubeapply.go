package kubeapply

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Patcher is the Patch method every client-go resource client has: typed
// (CoreV1().Pods(ns)) and dynamic (dyn.Resource(gvr).Namespace(ns)) alike.
type Patcher[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// Options are the apply's settings.
type Options struct {
	// FieldManager owns the fields applied; required by the API server.
	FieldManager string
	// Force takes fields another manager set instead of failing with a
	// conflict: for objects whose content tether is the source of.
	Force bool
	// DryRun has the API server run admission and validation without
	// persisting anything.
	DryRun bool
}

func (o Options) patchOptions() metav1.PatchOptions {
	// As client-go's own Apply: Force is always sent, true or false.
	opts := metav1.PatchOptions{FieldManager: o.FieldManager, Force: &o.Force}
	if o.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return opts
}

// Apply server-side applies obj through c, which must be the client of
// obj's resource (and namespace). The error is the API server's, unwrapped,
// so callers can read its status and say which object it was.
func Apply[T any](ctx context.Context, c Patcher[T], obj *unstructured.Unstructured, o Options) error {
	data, err := obj.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	_, err = c.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, o.patchOptions())
	return err
}

// FromTyped is a typed object as an apply body, without the empty status
// and null creationTimestamp typed structs always carry: applying them
// would make the field manager claim fields it does not mean to set.
func FromTyped(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	unstructured.RemoveNestedField(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}, nil
}
