package llm_test

import (
	"context"
	"slices"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

func TestUsageHooksNest(t *testing.T) {
	var calls []string
	ctx := context.Background()
	llm.RecordUsage(ctx, llm.Usage{TotalTokens: 1}) // no hook: nothing happens
	ctx = llm.WithUsageHook(ctx, func(u llm.Usage) { calls = append(calls, "outer", string(rune('0'+u.TotalTokens))) })
	ctx = llm.WithUsageHook(ctx, func(u llm.Usage) { calls = append(calls, "inner", string(rune('0'+u.TotalTokens))) })
	llm.RecordUsage(ctx, llm.Usage{TotalTokens: 7})
	if want := []string{"inner", "7", "outer", "7"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
}
