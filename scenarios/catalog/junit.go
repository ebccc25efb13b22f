package catalog

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML, the subset CI systems read: one testsuite, one testcase per
// scenario, a failure or skipped element, the steps as system-out.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes results as a JUnit XML report: suite "tether
// scenarios", a testcase per scenario (classname: its labels), the
// failing step and where to look in the failure, every step in
// system-out.
func WriteJUnit(w io.Writer, results []Result) error {
	suite := junitSuite{Name: "tether scenarios", Tests: len(results)}
	var total time.Duration
	for _, r := range results {
		total += r.Duration
		c := junitCase{Name: r.Name, Classname: "scenarios." + strings.Join(r.Labels, "."), Time: seconds(r.Duration), SystemOut: stepLines(r)}
		switch r.Status {
		case Failed:
			suite.Failures++
			body := r.Reason
			if len(r.Logs) > 0 {
				body += "\nwhere to look: " + strings.Join(r.Logs, ", ")
			}
			c.Failure = &junitMessage{Message: firstLine(r.Reason), Body: body}
		case Skipped:
			suite.Skipped++
			c.Skipped = &junitMessage{Message: r.Reason}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return fmt.Errorf("write the JUnit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func stepLines(r Result) string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "%-7s %s (%s)", s.Status, s.Name, s.Duration.Round(time.Millisecond))
		if s.Err != "" {
			fmt.Fprintf(&b, ": %s", s.Err)
		}
		b.WriteByte('\n')
	}
	for _, c := range r.CleanupErrors {
		fmt.Fprintf(&b, "cleanup failed: %s\n", c)
	}
	return b.String()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
