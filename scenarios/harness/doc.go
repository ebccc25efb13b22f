// Package harness runs the tether binary the way a user does, in an
// isolated workbench (its own state folder and kubeconfig), and gives
// scenarios the clients and checks they share.
package harness
