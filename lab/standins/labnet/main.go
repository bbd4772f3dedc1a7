// Command labnet is a static test tool for lab images: `labnet serve [ADDR]` answers HTTP with the
// host name, `labnet get URL` prints a response body, `labnet lookup NAME` prints the addresses a
// name resolves to. End-to-end tests run it in pods to probe Services, DNS and pod traffic.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "labnet:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: labnet serve [ADDR] | get URL | lookup NAME")
	}
	switch args[0] {
	case "serve":
		addr := ":8080"
		if len(args) > 1 {
			addr = args[1]
		}
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, host) })
		return http.ListenAndServe(addr, nil)
	case "get":
		if len(args) != 2 {
			return fmt.Errorf("usage: labnet get URL")
		}
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(args[1])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("get %s: %s", args[1], resp.Status)
		}
		return nil
	case "lookup":
		if len(args) != 2 {
			return fmt.Errorf("usage: labnet lookup NAME")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, args[1])
		if err != nil {
			return err
		}
		for _, a := range addrs {
			fmt.Println(a)
		}
		return nil
	case "version":
		fmt.Println("labnet 1")
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
