package llm

// charsPerToken is the rough size of a token in characters, for estimates only.
const charsPerToken = 4

// TokensForChars estimates the tokens of n characters (or bytes) of text: n/4, rounded up. It is
// the one chars-to-tokens rule of the gateway's estimates: a route's prompt estimate, a session's
// history budget, the limits' reservation and the usage of an answer the upstream did not count.
func TokensForChars(n int) int { return (n + charsPerToken - 1) / charsPerToken }
