// Package fleet brings the complete GitOps system up on a workbench's
// clusters: the Git server seeded with the sample repository, the principal
// on the hub, an agent per spoke, and one sample Application per spoke, and
// waits until the hub shows every spoke Synced and Healthy.
//
// On kind the components run as pods of tether's own image, built without
// a daemon and loaded into the nodes. On the embedded provider they run as
// supervised child processes of the workbench, and the same manifests are
// still applied, so a real API server validates them (kwok plays the pods).
package fleet
