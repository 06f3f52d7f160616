// Command timstack is the one binary of the timstack TI-Messenger compliance stack. Each subcommand lives in
// its own file; this file only dispatches. Only package main reads flags, environment and files.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// exitError carries the process exit code for a failure that has already been explained.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a bad invocation: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// failure is a check that ran and said no (invalid list, bad certificate): exit code 1.
func failure(format string, args ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"pki", "inspect and issue TI certificates (test CA)", runPKI},
		{"flist", "verify or sign a federation list", runFlist},
		{"directory", "the FHIR VZD directory: serve, import, token, client, generate", runDirectory},
		{"proxy", "the Messenger-Proxy in front of a homeserver (--config FILE)", runProxy},
		{"registration", "the TI-M registration service (--config FILE), dev-signer", runRegistration},
		{"idp", "development IDP-Dienst with gematik TEST-ONLY keys: serve, login (--card DIR)", runIDP},
		{"up", "the all-in-one dev stack: dev IDP, directory, registration, proxies (--config FILE)", runUp},
		{"demo", "two Synapse homeservers behind the dev stack and a narrated walkthrough", runDemo},
		{"version", "print the version", func(_ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, version())
			return nil
		}},
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "timstack " + bi.Main.Version
	}
	return "timstack (devel)"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: timstack <command> [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError("no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return nil
	case "--version", "-version":
		fmt.Fprintln(stdout, version())
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError("unknown command %q", args[0])
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintln(os.Stderr, "timstack:", err)
		os.Exit(code)
	}
}
