// Package pki is the workbench's certificate authority.
//
// One CA per workbench (kept under the state folder) signs every certificate
// tether hands out: API server serving certificates, client certificates for
// the control-plane components and the admin user, and later the mTLS
// identities of the principal and its agents. Client-certificate
// authentication from one CA means there are no static tokens to leak and
// every identity can be traced back to the workbench that issued it.
package pki
