package callinfo_test

import (
	"context"
	"sync"
	"testing"

	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/llm"
)

func TestRecord(t *testing.T) {
	if r := callinfo.FromContext(context.Background()); r != nil {
		t.Fatalf("FromContext outside a call = %+v; want nil", r)
	}
	var none *callinfo.Record // outside a call: setters do nothing
	none.SetRoute("a/m", 1)
	none.SetUsage(llm.Usage{TotalTokens: 1})
	if got := none.Info(); got != (callinfo.Info{}) {
		t.Errorf("nil record's Info = %+v; want zero", got)
	}

	ctx, r := callinfo.NewContext(context.Background(), "req-1")
	if callinfo.FromContext(ctx) != r || r.RequestID != "req-1" {
		t.Fatalf("FromContext = %p, request id %q; want %p, req-1", callinfo.FromContext(ctx), r.RequestID, r)
	}
	var wg sync.WaitGroup // concurrent writers and readers: run with -race
	for i := range 4 {
		wg.Go(func() {
			r.SetUsage(llm.Usage{TotalTokens: int32(i)})
			_ = r.Info()
		})
	}
	wg.Wait()
	r.SetRoute("a/m", 2)
	r.SetResponseModel("m-2024")
	r.SetUsage(llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}) // the last usage wins
	want := callinfo.Info{Target: "a/m", Attempts: 2, ResponseModel: "m-2024",
		Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, HasUsage: true}
	if got := r.Info(); got != want {
		t.Errorf("Info = %+v; want %+v", got, want)
	}
}
