package batch

import "time"

// WindowNeverEnds makes p's windows never end, so only a full batch is sent (tests in batch_test).
func WindowNeverEnds(p *Provider) {
	p.afterFunc = func(time.Duration, func()) func() bool { return func() bool { return true } }
}
