package suggest

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	known := []string{"list", "listen", "realm", "token", "GET", "POST"}
	for name, want := range map[string]string{"listn": "listen", "relam": "realm", "tokne": "token", "get": "GET", "PSOT": "POST", "zzzzzz": ""} {
		if got := Closest(name, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", name, got, want)
		}
	}
}
