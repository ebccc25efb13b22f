// Command benchtable reads `go test -json -bench` output on stdin and
// prints one table of every benchmark's figures (its ReportMetric values
// and, when it reports none, ns/op): `go tool task bench` pipes every
// package's benchmarks through it. Progress and failures go to stderr; the
// exit status is non-zero when a package failed or did not build.
//
//	go test -run '^$' -bench . -benchtime 1x -json ./... | go run ./scenarios/cmd/benchtable
//	... | go run ./scenarios/cmd/benchtable -markdown   # for README.md
package main
