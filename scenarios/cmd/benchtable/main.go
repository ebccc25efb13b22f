package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	markdown := flag.Bool("markdown", false, "print a Markdown table instead of aligned columns")
	flag.Parse()
	rows, failures, err := Collect(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	if err := Print(os.Stdout, rows, *markdown); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, "FAIL", f)
		}
		os.Exit(1)
	}
}
