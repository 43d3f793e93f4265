package artifacts

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"2", "1.99", 1},
		{"1.0", "1.0.0", -1},
		{"1.2.0-rc1", "1.2.0", -1},
		{"1.2.0-rc2", "1.2.0-rc10", -1},
		{"1.2.0-alpha", "1.2.0-beta", -1},
		{"1.2.0+build5", "1.2.0+build6", 0},
		{"2024.11.26", "2024.12.01", -1},
		{"1.0.0a", "1.0.0b", -1},
		{"1.0.0", "1.0.x", -1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d; want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestTargetsMatch(t *testing.T) {
	tg := &Targets{Architectures: []string{"arm64"}, Labels: map[string]string{"site": "berlin"}}
	if err := tg.Matches("amd64", map[string]string{"site": "berlin"}); err == nil {
		t.Error("amd64 host matched an arm64 release")
	}
	if err := tg.Matches("arm64", map[string]string{"site": "paris"}); err == nil {
		t.Error("paris host matched a berlin release")
	}
	if err := tg.Matches("arm64", map[string]string{"site": "berlin", "env": "prod"}); err != nil {
		t.Errorf("matching host refused: %v", err)
	}
	var none *Targets
	if err := none.Matches("riscv64", nil); err != nil {
		t.Errorf("a release without targets refused a host: %v", err)
	}
}
