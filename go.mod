module github.com/gotorcon/tor

go 1.24.0

require (
	filippo.io/edwards25519 v1.2.0
	github.com/cretz/bine v0.2.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/net v0.49.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.47.0 // indirect
	golang.org/x/sys v0.40.0 // indirect
)
