package app

import (
	"slices"
	"testing"
)

func TestClosersLastAddedFirstOnce(t *testing.T) {
	var got []int
	var c closers
	for n := range 3 {
		c.add(func() { got = append(got, n) })
	}
	c.closeAll()
	c.closeAll() // closes nothing more
	if want := []int{2, 1, 0}; !slices.Equal(got, want) {
		t.Fatalf("closed %v, want %v", got, want)
	}
	c.add(func() { got = append(got, 3) })
	c.closeAll()
	if want := []int{2, 1, 0, 3}; !slices.Equal(got, want) {
		t.Fatalf("after a later add, closed %v, want %v", got, want)
	}
}
