package limits

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key of the Redis store unless the config sets another.
const DefaultPrefix = "sy:rl:"

// limitScript takes or adds the costs of several buckets in one atomic step. It is the twin of
// evaluate in memory.go: keep them in step. Times are Unix milliseconds (fractions kept); a GCRA
// bucket stores its theoretical arrival time, a window its count.
//
// ARGV[1] is "take" (all or nothing) or "add" (no checks), ARGV[2] the time; then four values per
// key: limit, period (ms), 1 for a window or 0 for GCRA, cost. The reply is 1 or 0 (taken), then
// four integers per key: allowed (1/0), remaining, reset (ms), retry-after (ms, -1 never); a take
// that took nothing reports the buckets as they stay.
var limitScript = redis.NewScript(`
local take = ARGV[1] == 'take'
local now = tonumber(ARGV[2])
local out, writes, ok = {0}, {}, true
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 4
  local limit, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local win, cost = ARGV[a + 3] == '1', tonumber(ARGV[a + 4])
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  local allowed, rem, reset, retry, nextv, ttl, before
  if win then
    local wend = (math.floor(now / period) + 1) * period
    reset = wend - now
    before = {math.max(limit - v, 0), reset}
    nextv = math.max(v + cost, 0)
    allowed = v + cost <= limit and (cost > 0 or v < limit)
    ttl = math.ceil(reset)
    if allowed then
      rem, retry = math.max(limit - nextv, 0), 0
    elseif cost > limit then
      rem, retry = math.max(limit - v, 0), -1
    else
      rem, retry = math.max(limit - v, 0), reset
    end
    if nextv == 0 then ttl = 0 end
  else
    local interval = period / limit
    local tat = math.max(v, now)
    before = {math.min(math.floor(math.max(period - (tat - now), 0) / interval), limit), tat - now}
    nextv = tat + cost * interval
    if cost < 0 then nextv = math.max(nextv, now) end
    local ahead = nextv - now
    allowed = ahead <= period
    local lack = ahead
    if not allowed then lack = tat - now end
    reset = lack
    rem = math.min(math.floor(math.max(period - lack, 0) / interval), limit)
    if allowed then retry = 0 elseif cost > limit then retry = -1 else retry = ahead - period end
    ttl = math.ceil(ahead)
  end
  ok = ok and allowed
  writes[i] = {nextv, ttl, win, allowed, rem, reset, retry, before}
end
for i = 1, #KEYS do
  local w = writes[i]
  local rem, reset = w[5], w[6]
  if not ok and w[4] then rem, reset = w[8][1], w[8][2] end
  local flag = 0
  if w[4] then flag = 1 end
  table.insert(out, flag)
  table.insert(out, rem)
  table.insert(out, math.ceil(reset))
  table.insert(out, math.ceil(w[7]))
end
if ok or not take then
  for i = 1, #KEYS do
    local w = writes[i]
    if w[2] <= 0 then
      redis.call('DEL', KEYS[i])
    elseif w[3] then
      redis.call('SET', KEYS[i], string.format('%d', w[1]), 'PX', w[2] + 1000)
    else
      redis.call('SET', KEYS[i], string.format('%.3f', w[1]), 'PX', w[2])
    end
  end
end
if ok then out[1] = 1 end
return out
`)

// Redis is a Store shared by every instance using the same Redis and key prefix. Each Take or
// Add is one Lua script call (one round trip), atomic across instances. With Redis Cluster all
// keys of one call must share a hash slot: the Limiter's keys carry the tenant as a hash tag.
type Redis struct {
	rdb redis.UniversalClient
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on rdb. The caller closes rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// Take implements Store.
func (r *Redis) Take(ctx context.Context, now time.Time, bs []Bucket) ([]BucketState, bool, error) {
	res, err := r.run(ctx, "take", now, bs)
	if err != nil {
		return nil, false, fmt.Errorf("limits.Redis.Take: %w", err)
	}
	if len(res) != 1+4*len(bs) {
		return nil, false, fmt.Errorf("limits.Redis.Take: script returned %d values for %d buckets", len(res), len(bs))
	}
	states := make([]BucketState, len(bs))
	for i := range states {
		v := res[1+4*i:]
		states[i] = BucketState{Allowed: v[0] == 1, Remaining: v[1], Reset: time.Duration(v[2]) * time.Millisecond}
		switch {
		case v[3] < 0:
			states[i].RetryAfter = -1
		case v[3] > 0:
			states[i].RetryAfter = time.Duration(v[3]) * time.Millisecond
		}
	}
	return states, res[0] == 1, nil
}

// Add implements Store.
func (r *Redis) Add(ctx context.Context, now time.Time, bs []Bucket) error {
	if _, err := r.run(ctx, "add", now, bs); err != nil {
		return fmt.Errorf("limits.Redis.Add: %w", err)
	}
	return nil
}

func (r *Redis) run(ctx context.Context, mode string, now time.Time, bs []Bucket) ([]int64, error) {
	keys := make([]string, len(bs))
	args := make([]any, 0, 2+4*len(bs))
	args = append(args, mode, strconv.FormatFloat(float64(now.UnixMicro())/1e3, 'f', 3, 64))
	for i, b := range bs {
		keys[i] = b.Key
		win := "0"
		if b.Window {
			win = "1"
		}
		args = append(args, b.Limit, b.Period.Milliseconds(), win, b.Cost)
	}
	return limitScript.Run(ctx, r.rdb, keys, args...).Int64Slice()
}
