// Package harness runs the tether binary the way a user does, in an
// isolated workbench (its own state folder and kubeconfig), and gives
// scenarios the clients and checks they share. A Driver is a scenario's
// handle on one such workbench; catalog.WorkbenchPaths only names the
// binary and folders a catalog run is given.
package harness
