package tiered

// OnInvalidation sets a function called after each invalidation from Redis is applied.
func OnInvalidation(t *Store, f func()) {
	t.mu.Lock()
	t.hook = f
	t.mu.Unlock()
}
