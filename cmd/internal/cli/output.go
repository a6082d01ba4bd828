package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// AddOutput gives root the kubectl convention: -o json|yaml|table on every
// command that prints results. Left unset, people at a terminal get a
// table and scripts (a pipe, a file) get JSON.
func AddOutput(root *cobra.Command) {
	root.PersistentFlags().StringP("output", "o", "", "json, yaml or table (default: table at a terminal, json otherwise)")
}

// Output is the format c prints in: json, yaml or table.
func Output(c *cobra.Command) (string, error) {
	f := c.Flag("output")
	if f == nil {
		return "json", nil
	}
	switch v := f.Value.String(); v {
	case "json", "yaml", "table":
		return v, nil
	case "":
		if isTerminal(c.OutOrStdout()) {
			return "table", nil
		}
		return "json", nil
	default:
		return "", UsageError{Msg: fmt.Sprintf("--output %q: use json, yaml or table", v), Command: c.CommandPath()}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// Print writes v (anything encoding/json encodes) in c's output format.
func Print(c *cobra.Command, v any) error {
	format, err := Output(c)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w := c.OutOrStdout()
	switch format {
	case "yaml":
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(doc)
	case "table":
		return printTable(w, raw)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printTable prints a list of objects as columns (the first object's
// members, in its order), or one object as KEY VALUE lines.
func printTable(w io.Writer, raw []byte) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		if len(list) == 0 {
			fmt.Fprintln(w, "(none)")
			return nil
		}
		cols := orderedKeys(list[0])
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
		for _, item := range list {
			var row map[string]any
			if err := unmarshalNumbers(item, &row); err != nil {
				fmt.Fprintln(tw, cell(item))
				continue
			}
			cells := make([]string, len(cols))
			for i, k := range cols {
				cells[i] = cell(row[k])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	}
	var obj map[string]any
	if err := unmarshalNumbers(raw, &obj); err != nil {
		_, err := fmt.Fprintln(w, cell(string(raw)))
		return err
	}
	for _, k := range orderedKeys(raw) {
		fmt.Fprintf(tw, "%s\t%s\n", strings.ToUpper(k), cell(obj[k]))
	}
	return tw.Flush()
}

// orderedKeys lists an object's member names in the order they are written.
func orderedKeys(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 {
				// A member name at the top level is followed by its value.
				keys = append(keys, t)
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return keys
				}
			}
		}
	}
	return keys
}

// unmarshalNumbers decodes keeping numbers as written (no 1.7e+09).
func unmarshalNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// cell is one value as a table shows it.
func cell(v any) string {
	switch t := v.(type) {
	case nil:
		return "-"
	case string:
		if t == "" {
			return "-"
		}
		return t
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			if _, nested := e.(map[string]any); nested {
				return fmt.Sprintf("%d", len(t))
			}
			parts = append(parts, cell(e))
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, " ")
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "{" + strings.Join(keys, ",") + "}"
	case json.RawMessage:
		return string(t)
	}
	return fmt.Sprint(v)
}
