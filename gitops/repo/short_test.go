package repo

import "testing"

func TestShortSHA(t *testing.T) {
	for in, want := range map[string]string{
		"45eab08b1f2c3d4e5f60718293a4b5c6d7e8f901": "45eab08b",
		"45eab08b": "45eab08b",
		"abc":      "abc",
		"":         "",
	} {
		if got := ShortSHA(in); got != want {
			t.Errorf("ShortSHA(%q) = %q, want %q", in, got, want)
		}
	}
}
