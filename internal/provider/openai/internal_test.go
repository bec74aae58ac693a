package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

func newTestStream(body string) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	return newStream(ctx, cancel, "p", &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body))})
}

func TestSSEParsing(t *testing.T) {
	const c = `{"choices":[{"index":0,"delta":{"content":"%s"}}]}`
	ev := func(s string) string { return strings.Replace(c, "%s", s, 1) }
	long := strings.Repeat("x", 100<<10) // longer than the reader's buffer
	cases := []struct {
		name     string
		body     string
		want     string
		wantKind *llm.Kind // nil: clean end
	}{
		{"spaces and DONE", "data: " + ev("a") + "\n\ndata: " + ev("b") + "\n\ndata: [DONE]\n\n", "ab", nil},
		{"no space after data", "data:" + ev("a") + "\n\ndata:[DONE]\n\n", "a", nil},
		{"CRLF", "data: " + ev("a") + "\r\n\r\ndata: [DONE]\r\n\r\n", "a", nil},
		{"comments, ids, retry, named events", ": ping\n\nretry: 100\nid: 7\nevent: message\ndata: " + ev("a") + "\n\n: keep-alive\n\ndata: [DONE]\n\n", "a", nil},
		{"data split over lines", "data: {\"choices\":[{\"index\":0,\n" + "data: \"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n", "a", nil},
		{"empty chunk skipped", "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\ndata: " + ev("a") + "\n\ndata: [DONE]\n\n", "a", nil},
		{"long line", "data: " + ev(long) + "\n\ndata: [DONE]\n\n", long, nil},
		{"last event without blank line", "data: " + ev("a") + "\n\ndata: [DONE]", "a", nil},
		{"truncated stream", "data: " + ev("a") + "\n\n", "a", llm.Ptr(llm.KindUpstream)},
		{"invalid json", "data: {nope\n\n", "", llm.Ptr(llm.KindUpstream)},
		{"error event", "data: " + ev("a") + "\n\nevent: error\ndata: {\"message\":\"overloaded\",\"type\":\"overloaded_error\"}\n\n", "a", llm.Ptr(llm.KindRateLimited)},
		{"error object", "data: {\"error\":{\"message\":\"too long\",\"code\":\"context_length_exceeded\"}}\n\n", "", llm.Ptr(llm.KindBusiness)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStream(c.body)
			defer s.Close()
			var got strings.Builder
			var err error
			for {
				var ch *llm.Chunk
				ch, err = s.Recv()
				if err != nil {
					break
				}
				for _, cc := range ch.Choices {
					if cc.Content != nil {
						got.WriteString(*cc.Content)
					}
				}
			}
			if got.String() != c.want {
				t.Errorf("content = %.40q, want %.40q", got.String(), c.want)
			}
			if c.wantKind == nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("end = %v, want io.EOF", err)
				}
				return
			}
			if k := llm.KindOf(err); k != *c.wantKind || errors.Is(err, io.EOF) {
				t.Errorf("end = %v (kind %v), want kind %v", err, k, *c.wantKind)
			}
		})
	}
}

func TestClassifyStatus(t *testing.T) {
	cases := []struct {
		status   int
		body     string
		want     llm.Kind
		wantCode string
		wantMsg  string
	}{
		{400, `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`, llm.KindInvalidArgument, "invalid_value", "Invalid value for 'temperature'"},
		{400, `{"error":{"message":"Your request was rejected as a result of our safety system.","code":"content_policy_violation"}}`, llm.KindBusiness, "content_filter", "safety system"},
		{400, `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","code":"content_filter","status":400}}`, llm.KindBusiness, "content_filter", "content management policy"},
		{400, `{"error":"Model Not Exist","code":"model_not_found"}`, llm.KindInvalidArgument, "", "Model Not Exist"},
		{400, `{"error":{"message":"Model Not Exist","code":"model_not_found"}}`, llm.KindNotFound, "model_not_found", "not found"},
		{401, `{"error":{"message":"Incorrect API key provided: sk-abc","code":"invalid_api_key"}}`, llm.KindUnauthenticated, "", "gateway's credentials"},
		{402, `{"error":{"message":"Insufficient Balance"}}`, llm.KindQuotaExceeded, "insufficient_quota", "quota"},
		{403, `{"error":{"message":"Country, region, or territory not supported"}}`, llm.KindPermissionDenied, "", "denied"},
		{413, ``, llm.KindTooLarge, "", "too large"},
		{429, `{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}`, llm.KindQuotaExceeded, "insufficient_quota", "quota"},
		{500, `{"error":{"message":"internal details","type":"server_error"}}`, llm.KindUpstream, "", "failed"},
		{501, `not implemented`, llm.KindUpstream, "", "failed"},
		{503, `{"error":{"message":"The engine is currently overloaded"}}`, llm.KindUnavailable, "", "unavailable"},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, llm.KindRateLimited, "", "overloaded"},
	}
	for _, c := range cases {
		t.Run(http.StatusText(c.status)+" "+c.wantCode, func(t *testing.T) {
			e := classifyStatus("p", c.status, http.Header{}, []byte(c.body))
			if e.Kind != c.want || e.Code != c.wantCode {
				t.Errorf("kind/code = %v/%q, want %v/%q", e.Kind, e.Code, c.want, c.wantCode)
			}
			if !strings.Contains(e.SafeMessage(), c.wantMsg) {
				t.Errorf("message %q lacks %q", e.SafeMessage(), c.wantMsg)
			}
			if e.Provider != "p" || e.UpstreamStatus != c.status {
				t.Errorf("provider %q status %d", e.Provider, e.UpstreamStatus)
			}
		})
	}
}

func TestUpstreamMessageTruncated(t *testing.T) {
	e := classifyStatus("p", 500, nil, []byte(strings.Repeat("é", 2000)))
	if len(e.UpstreamMessage) > wireutil.MaxUpstreamMessage+len("…") || !strings.HasSuffix(e.UpstreamMessage, "é…") {
		t.Errorf("upstream message of %d bytes ending %q", len(e.UpstreamMessage), e.UpstreamMessage[len(e.UpstreamMessage)-6:])
	}
}
