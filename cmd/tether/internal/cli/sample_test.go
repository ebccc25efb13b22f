package cli

import (
	"strings"
	"testing"
)

func TestSampleScaleRejectsBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sample", "scale"}, "give the replica count"},
		{[]string{"sample", "scale", "three"}, `replicas "three"`},
		{[]string{"sample", "scale", "--", "-1"}, "from 0 to 20"},
		{[]string{"sample", "scale", "2"}, "tether up"}, // no workbench here
	}
	for _, tt := range tests {
		e := newEnv(t)
		_, _, err := e.run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}
