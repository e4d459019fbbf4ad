//go:build !linux

package sample

func threadCPU() int64 { return -1 }
