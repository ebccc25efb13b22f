// Package existing uses clusters the user already has, named by kubeconfig
// contexts: the path for someone who has outgrown one machine. tether never
// creates or deletes these clusters, only what it puts inside them.
package existing
