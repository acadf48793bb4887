package config

import (
	"strings"
	"testing"
)

// FuzzValue feeds arbitrary values to every typed accessor and to the
// hidden-service grouping: nothing may panic, and a value read as a
// duration or size must read the same after normalisation.
func FuzzValue(f *testing.F) {
	for _, s := range []string{"600", "10 minutes", "1.5 KB", "-1.000000", "auto", "{us},{de}", "99999999999999 TB", ".5 weeks", "1e308 gb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range []Type{typeBoolean, typeAutoBool, typeInteger, typeFloat, typeTimeInterval,
			typeTimeMsecInterval, typeDataSize, typeTime, typeCommaList, typeRouterList, typeLineList, "Unknown"} {
			v := newValue("X", typ, s)
			v.Bool()
			v.autoBool()
			v.Int()
			v.Uint()
			v.Float()
			v.Time()
			v.List()
			v.normalized()
			if d, err := v.Duration(); err == nil && d < 0 {
				t.Fatalf("%s %q: negative duration %v", typ, s, d)
			}
			if n, err := v.DataSize(); err == nil {
				if w, err := newValue("X", typeDataSize, v.normalized()[0]).DataSize(); typ == typeDataSize && (err != nil || w != n) {
					t.Fatalf("%q: %d, normalised %d (%v)", s, n, w, err)
				}
			}
		}
		lines := []Option{{"HiddenServiceDir", "/a"}}
		for _, part := range strings.Split(s, "\n") {
			k, v, _ := strings.Cut(part, "=")
			lines = append(lines, Option{"HiddenService" + k, v})
		}
		ParseHiddenServices(lines)
	})
}
