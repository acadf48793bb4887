package syncbuf

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("ab"))
				b.WriteString("c")
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	s := b.String()
	assert.Len(t, s, 8*100*3)
	assert.Equal(t, 800, strings.Count(s, "c"))
}
