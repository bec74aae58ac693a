package llm

import "testing"

func TestTokensForChars(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 4: 1, 5: 2, 8: 2, 4001: 1001} {
		if got := TokensForChars(n); got != want {
			t.Errorf("TokensForChars(%d) = %d, want %d", n, got, want)
		}
	}
}
