// Command sluice is the sluice CLI: inspect models, tokenize, run and serve.
//
// Each subcommand lives in its own file and registers itself in init with
// register; main dispatches on the first argument.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run receives the arguments after the command
// name and returns an error; errors are printed on one line and exit 1.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("sluice: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errInterrupted marks a command stopped by SIGINT or SIGTERM: exit
// status 130, as a shell reports a process ended by Ctrl-C.
var errInterrupted = errors.New("interrupted")

// errUsage marks an error caused by bad command-line usage (exit status 2).
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "sluice: a native LLM inference engine")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sluice <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'sluice <command> -h' for a command's flags.")
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain runs the CLI and returns the process exit status. It is separate
// from main so tests can drive the CLI in-process.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(stdout, readVersion())
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sluice: unknown command %q (run 'sluice help')\n", args[0])
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		msg := strings.TrimSpace(err.Error())
		fmt.Fprintf(stderr, "sluice %s: %s\n", c.name, msg)
		if errors.Is(err, errUsage) {
			return 2
		}
		if errors.Is(err, errInterrupted) {
			return 130
		}
		return 1
	}
	return 0
}

// newFlags returns a FlagSet for a subcommand that reports errors instead of
// exiting. A bad flag becomes a one-line error; -h prints the usage to
// stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	helpOut[fs] = stderr
	return fs
}

// helpOut remembers where each FlagSet's -h output goes (flag parsing
// itself is silenced so errors stay on one line).
var helpOut = map[*flag.FlagSet]io.Writer{}

// parseFlags parses args with fs, wrapping flag errors as usage errors.
// Flags may follow positional arguments ("sluice tokenize TEXT --json");
// everything after "--" is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if w := helpOut[fs]; w != nil {
					fs.SetOutput(w)
					fs.Usage()
				}
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" terminator if the arguments before rest end in one.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
