// Command tbsim runs fleets of simulated ESP32 devices against ThingsBoard,
// or against its own embedded ThingsBoard-compatible server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() { os.Exit(run()) }

// run is main with its deferred work done before the process exits.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// TBSIM_CPUPROFILE and TBSIM_HEAPPROFILE write Go profiles of any
	// command, for whoever wants to see where tbsim's own time goes.
	if path := os.Getenv("TBSIM_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tbsim: TBSIM_CPUPROFILE:", err)
		} else {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if path := os.Getenv("TBSIM_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	return code
}
