package tor

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeQuickStart keeps the README's quick start what the package's
// Example compiles: the same lines, at most 15 of them, with the response
// body closed.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)## Quick start\n\n```go\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, m, "README has a Go quick start")
	quick := strings.TrimSpace(string(m[1]))

	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	e := regexp.MustCompile("(?s)\nfunc Example\\(\\) \\{\n(.*?)\n\\}\n").FindSubmatch(src)
	require.NotNil(t, e, "example_test.go has Example")
	var lines []string
	for _, l := range strings.Split(string(e[1]), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	assert.Equal(t, strings.Join(lines, "\n"), quick, "README quick start and Example differ")
	assert.LessOrEqual(t, strings.Count(quick, "\n")+1, 15, "quick start longer than 15 lines")
	assert.Regexp(t, `resp\.Write\(|resp\.Body\.Close\(\)`, quick, "the response body is closed")
}
