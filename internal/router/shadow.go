package router

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/llm"
)

// DefaultShadowTimeout bounds a shadow call when ShadowConfig.Timeout is 0.
const DefaultShadowTimeout = 30 * time.Second

// ShadowConfig mirrors a share of a route's chat requests to a candidate target. The mirrored
// call starts after the client's answer is complete (a blocking answer, or a stream's end), runs
// in the background with its own timeout, and its answer is only compared and recorded:
// MetricShadowRequests, MetricShadowDuration and a log line with a diff summary. Streams are
// shadowed with the blocking form of the request, compared against the streamed text. Requests
// whose primary answer failed, and embeddings, are not mirrored. Shadow calls do not feed the
// candidate's breaker or latency figures.
type ShadowConfig struct {
	Model   string        `yaml:"model"`             // provider/model of the candidate
	Percent float64       `yaml:"percent"`           // share of requests mirrored, 0 to 100
	Timeout time.Duration `yaml:"timeout,omitempty"` // bound of one shadow call; default 30s
}

// shadowRoute is a route's resolved shadow target.
type shadowRoute struct {
	target  Target
	percent float64
	timeout time.Duration
}

// mirror starts the shadow call of p, if p was drawn for one, for req whose primary answer had
// text primary. It returns at once. ctx's values (trace) are kept, its cancellation is not.
func (p *Plan) mirror(ctx context.Context, req *llm.ChatRequest, primary string) {
	s := p.shadow
	if s == nil {
		return
	}
	st := p.state
	attrs := func(outcome string) metric.MeasurementOption {
		return metric.WithAttributes(attribute.String("route", p.Route),
			attribute.String("target", s.target.Name()), attribute.String("outcome", outcome))
	}
	select {
	case st.shadowSlots <- struct{}{}:
	default:
		st.live.shadowRequests.Add(ctx, 1, attrs("dropped"))
		return
	}
	r := *req
	r.Model = s.target.Model
	p.enter()
	go func() {
		defer func() {
			<-st.shadowSlots
			if st.shadowDone != nil {
				st.shadowDone()
			}
		}()
		defer p.leave()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		start := st.clock.Now()
		resp, err := s.target.Provider.Chat(sctx, &r)
		d := st.clock.Now().Sub(start)
		outcome := "success"
		if err != nil {
			outcome = "failure"
		}
		st.live.shadowRequests.Add(sctx, 1, attrs(outcome))
		st.live.shadowDuration.Record(sctx, d.Seconds(), attrs(outcome))
		if err != nil {
			st.log.Warn("shadow request failed", "route", p.Route, "target", s.target.Name(),
				"duration", d.String(), "err", err)
			return
		}
		text := responseText(resp)
		st.log.Info("shadow request", "route", p.Route, "target", s.target.Name(), "duration", d.String(),
			"primary_len", len(primary), "shadow_len", len(text), "equal", text == primary)
	}()
}

// responseText is the text of the first choice of r.
func responseText(r *llm.ChatResponse) string {
	if r == nil || len(r.Choices) == 0 || r.Choices[0].Content == nil {
		return ""
	}
	return *r.Choices[0].Content
}

// streamText collects the text of a stream's first choice, for the shadow comparison.
type streamText struct {
	req *llm.ChatRequest
	b   strings.Builder
}

func (t *streamText) add(c *llm.Chunk) {
	if t == nil || c == nil {
		return
	}
	for _, ch := range c.Choices {
		if ch.Index == 0 && ch.Content != nil {
			t.b.WriteString(*ch.Content)
		}
	}
}
