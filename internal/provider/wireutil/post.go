package wireutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// MaxErrorBody bounds how much of an upstream error answer PostJSON reads.
const MaxErrorBody = 64 << 10

// CallContext bounds one upstream call by timeout when ctx has no deadline of its own (timeout 0:
// no bound). The caller must call the CancelFunc.
func CallContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, timeout)
		}
	}
	return context.WithCancel(ctx)
}

// PostJSON sends body as JSON (HTML characters unescaped) with header and returns the response
// when its status is 2xx. Otherwise it reads up to MaxErrorBody bytes of the answer, closes it,
// and returns the response (Body closed; use its StatusCode and Header) with the bytes read, for
// the adapter to classify. err is an *llm.Error of the given provider when the request could not
// be encoded or sent.
func PostJSON(ctx context.Context, client *http.Client, provider, url string, body any, header http.Header) (resp *http.Response, errBody []byte, err error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		e := llm.Wrap(llm.KindInvalidArgument, fmt.Errorf("%s: encode request: %w", provider, err), "the request could not be encoded")
		e.Provider = provider
		return nil, nil, e
	}
	return PostBody(ctx, client, provider, url, buf.Bytes(), header)
}

// PostBody is PostJSON for a body the caller encoded (an adapter's own encoder); body must not
// change until the call returns.
func PostBody(ctx context.Context, client *http.Client, provider, url string, body []byte, header http.Header) (resp *http.Response, errBody []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		e := llm.Wrap(llm.KindInternal, fmt.Errorf("%s: build request: %w", provider, err), "")
		e.Provider = provider
		return nil, nil, e
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err = client.Do(req)
	if err != nil {
		return nil, nil, ClassifyTransport(ctx, provider, err, false)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil, nil
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	if rerr != nil && ctx.Err() != nil {
		return nil, nil, ClassifyTransport(ctx, provider, rerr, true)
	}
	return resp, b, nil
}
