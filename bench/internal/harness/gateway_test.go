package harness

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLogProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.log")
	old := `{"level":"WARN","msg":"request failed","error":"before the window"}` + "\n"
	lines := old +
		`{"level":"INFO","msg":"request","status":200}` + "\n" +
		`{"level":"WARN","msg":"finished call","grpc.code":"Unavailable"}` + "\n" +
		`{"level":"WARN","msg":"request failed","error":"circuit open"}` + "\n" +
		`not json` + "\n" +
		`{"level":"ERROR","msg":"upstream broke"}` + "\n" +
		`{"level":"WARN","msg":"request failed","error":"circuit open"}` + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{logPath: path}
	if g.LogSize() != int64(len(lines)) {
		t.Errorf("LogSize = %d, want %d", g.LogSize(), len(lines))
	}
	got := g.LogProblems(int64(len(old)), 3)
	want := []string{"2 × request failed: circuit open", "1 × upstream broke"}
	if !slices.Equal(got, want) {
		t.Errorf("LogProblems = %q, want %q", got, want)
	}
	if got := g.LogProblems(0, 1); len(got) != 1 || got[0] != want[0] {
		t.Errorf("LogProblems(0, 1) = %q", got)
	}
}
