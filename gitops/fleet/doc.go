// Package fleet brings the complete GitOps system up on a workbench's
// clusters: the Git server seeded with the sample repository, the principal
// on the hub, an agent per spoke, and one sample Application per spoke, and
// waits until the hub shows every spoke Synced and Healthy.
//
// On kind the components run as pods of tether's own image, built without
// a daemon and loaded into the nodes. On the embedded provider they run as
// supervised child processes of the workbench, and the same manifests are
// still applied, so a real API server validates them (kwok plays the pods).
//
// On both providers the agents reach the principal through its Service: on
// kind through its NodePort, on the embedded provider through a supervised
// service proxy (`tether intercept service-proxy`) that serves the Service
// on a pinned loopback address and routes it, by the Service's endpoints,
// to the pod annotated with the principal process's address. An intercept
// of that Service therefore moves the agents to a principal run elsewhere,
// which is the debugging flow of docs/debugging.md. A restart of the
// components keeps their loopback addresses, so what the agents, the Git
// server and the Applications were given stays true.
//
// What leaves the fleet leaves the hub: Up removes what the hub (a
// namespace tether made, Applications, an Agent object), the previous
// record or the TLS folder still holds of spokes that are not live, and
// RemoveSpoke, which `tether spoke remove` and the UI call, removes a
// spoke's hub objects before its cluster, or only those when it has no
// cluster any more.
//
// On the embedded provider the sample answers too: a tether sample server
// per spoke stands in for the sample's kwok pods and a service proxy per
// spoke serves its Services on loopback (ServiceAddr, `tether sample url`).
//
// What differs by provider is asked of the clusters' traits
// (cluster.Traits: components as pods where the nodes have an image store,
// sample stand-ins where they run no containers), never of the provider's
// name; a record, which names only its provider, gets them from
// cluster.ProviderTraits. Up, AddSpoke and RemoveSpoke work on the
// clusters they are given (Options.Clusters, or those AddSpoke and
// RemoveSpoke just left) and find the hub by its role; only when given
// none do they read the workbench's record.
//
// Files by concern: fleet.go (Up, Down, what fleet asks of a provider),
// state.go (the record), certs.go, local.go (the components as supervised
// processes), components.go (their status and stop), wait.go (waiting for
// them to answer), pods.go (the components as pods of tether's image),
// image.go (building that image), forward.go (port-forwards to the Git
// server's pod), apps.go (manifests, the sample repository's seed, sample
// Applications, the wait for Synced), samples.go (the sample answering on
// embedded), spokes.go (AddSpoke, RemoveSpoke, pruning), hubside.go (what
// the hub holds of each spoke, and removing it), commit.go and watch.go
// (changes to the sample and their rollout), errors.go (the causes errors
// carry, for the command and the UI to say what to type or press).
package fleet
