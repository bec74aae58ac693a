package wireutil

import (
	"fmt"
	"net/url"
	"strings"
)

// BaseURL returns configured, or def when configured is empty, without trailing slashes. It
// fails, naming op (e.g. "gemini.New"), when the result is not an absolute http(s) URL.
func BaseURL(op, configured, def string) (string, error) {
	base := configured
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: base_url %q is not an http(s) URL", op, configured)
	}
	return strings.TrimRight(base, "/"), nil
}
