module github.com/orchestrator-go/orchestrator

go 1.25

require github.com/failsafe-go/failsafe-go v0.9.8

require (
	github.com/bits-and-blooms/bitset v1.24.4 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
)
