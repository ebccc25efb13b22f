package scenarios

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// curlStandInEnv, set to 1, makes this test binary act as curl: the docs
// test puts it on the blocks' PATH as `curl` where no curl is installed,
// so that the pages' curl lines still run (and are checked) there.
const curlStandInEnv = "TETHER_DOCS_TEST_CURL"

func init() {
	if os.Getenv(curlStandInEnv) == "1" {
		os.Exit(curlStandIn(os.Args[1:], os.Stdout, os.Stderr))
	}
}

// curlStandIn does what the docs ask of curl: GET a URL, with -H headers,
// and print the body. -s, -S and -f are accepted (-f fails on an HTTP
// error, as curl does); anything else is refused, naming itself.
func curlStandIn(args []string, out, errw io.Writer) int {
	var (
		url     string
		headers [][2]string
		fail    bool
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-H" || a == "--header":
			if i+1 == len(args) {
				fmt.Fprintln(errw, "curl (docs test stand-in): -H needs a header")
				return 2
			}
			i++
			k, v, ok := strings.Cut(args[i], ":")
			if !ok {
				fmt.Fprintf(errw, "curl (docs test stand-in): header %q: want NAME: VALUE\n", args[i])
				return 2
			}
			headers = append(headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		case a == "-s" || a == "-S" || a == "-sS" || a == "--silent":
		case a == "-f" || a == "-sf" || a == "-fsS" || a == "-sSf" || a == "--fail":
			fail = true
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(errw, "curl (docs test stand-in, as no curl is installed here): option %s is not supported: install curl, or use -H, -s, -f only\n", a)
			return 2
		case url != "":
			fmt.Fprintln(errw, "curl (docs test stand-in): one URL only")
			return 2
		default:
			url = a
		}
	}
	if url == "" {
		fmt.Fprintln(errw, "curl (docs test stand-in): no URL")
		return 2
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(errw, "curl: (3) %v\n", err)
		return 3
	}
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintf(errw, "curl: (7) %v\n", err)
		return 7
	}
	defer resp.Body.Close()
	if fail && resp.StatusCode >= 400 {
		fmt.Fprintf(errw, "curl: (22) The requested URL returned error: %d\n", resp.StatusCode)
		return 22
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		fmt.Fprintf(errw, "curl: (56) %v\n", err)
		return 56
	}
	return 0
}
