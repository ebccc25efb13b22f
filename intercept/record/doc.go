// Package record is what an intercept leaves in the cluster, shared by the
// workbench and the traffic-agent: the annotation on the taken-over Service
// (which holds the original selector, so either side, or a later sweep, can
// put the Service back), the labels of everything tether creates for
// intercepts, and the Lease whose renewals prove the workbench is alive.
package record
