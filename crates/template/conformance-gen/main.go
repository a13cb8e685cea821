// Command conformance-gen runs the core-language conformance cases through Go's own
// text/template (with Helm's missingkey=zero) and writes the expected outputs/errors.
//
//	go run . ../tests/conformance/core.input > ../tests/conformance/core.golden
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type testCase struct {
	name     string
	sections map[string]string
	order    []string
}

func parse(path string) ([]*testCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cases []*testCase
	var cur *testCase
	var section string
	var lines []string
	flush := func() {
		if cur != nil && section != "" {
			cur.sections[section] = strings.Join(lines, "\n")
			cur.order = append(cur.order, section)
		}
		lines = nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "=== "):
			flush()
			cur = &testCase{name: strings.TrimPrefix(line, "=== "), sections: map[string]string{}}
			cases = append(cases, cur)
			section = ""
		case strings.HasPrefix(line, "--- ") && cur != nil:
			flush()
			section = strings.TrimPrefix(line, "--- ")
		default:
			if section != "" {
				lines = append(lines, line)
			}
		}
	}
	flush()
	return cases, sc.Err()
}

func run(c *testCase) (string, error) {
	data := map[string]any{}
	if v, ok := c.sections["values"]; ok && strings.TrimSpace(v) != "" {
		if err := json.Unmarshal([]byte(v), &data); err != nil {
			return "", fmt.Errorf("BAD VALUES JSON: %v", err)
		}
	}
	t := template.New("t").Option("missingkey=zero")
	if _, err := t.Parse(c.sections["template"]); err != nil {
		return "", err
	}
	var b strings.Builder
	err := t.Execute(&b, data)
	return b.String(), err
}

func main() {
	cases, err := parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, c := range cases {
		fmt.Fprintf(w, "=== %s\n", c.name)
		for _, s := range c.order {
			if s == "expected-json" || s == "error" {
				continue
			}
			fmt.Fprintf(w, "--- %s\n%s\n", s, c.sections[s])
		}
		out, err := run(c)
		if err != nil {
			if strings.HasPrefix(err.Error(), "BAD VALUES JSON") {
				fmt.Fprintln(os.Stderr, c.name, err)
				os.Exit(1)
			}
			fmt.Fprintf(w, "--- error-exact\n%s\n", err.Error())
			continue
		}
		j, _ := json.Marshal(out)
		fmt.Fprintf(w, "--- expected-json\n%s\n", j)
	}
}
