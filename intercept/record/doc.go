// Package record is what intercepts leave in the cluster, shared by the
// workbench and the traffic-agent:
//
//   - each intercept's Lease, renewed by the workbench holding it, carries
//     the intercept's Record (port, headers, holder) as an annotation: the
//     agent reads its routes from these Leases, so there is one writer per
//     intercept and no shared object to fight over;
//   - the taken-over Service carries a Takeover annotation holding the
//     original selector, so the last workbench, the agent, a sweep or
//     uninstall can put it back;
//   - the agent's own Lease (its lock, liveness and per-intercept counters)
//     and the Secret holding its session token, so a second workbench can
//     attach to the agent the first one started.
//
// Everything carries the labels of ComponentSelector so uninstall finds it.
package record
