package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// Output formats of `kubevs status -o`.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Write renders r to w in format (FormatTable or FormatJSON).
func Write(w io.Writer, r Report, format string) error {
	switch format {
	case FormatTable, "":
		return WriteTable(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	}
	return fmt.Errorf("unknown output format %q (want %s or %s)", format, FormatTable, FormatJSON)
}

// WriteJSON renders r as indented JSON (the Report type's fields are its schema).
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteTable renders r in the layout of `ipvsadm -Ln`, grouped by Service, followed by the
// drift (one line each) and the warnings.
func WriteTable(w io.Writer, r Report) error {
	var b strings.Builder
	nvs := 0
	for _, s := range r.Services {
		nvs += len(s.VirtualServers)
	}
	fmt.Fprintf(&b, "Node %s: %d Services, %d virtual servers, dummy link %s\n", r.Node, len(r.Services), nvs, r.Dummy)
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	fmt.Fprintf(&b, "  -> %-28s %-7s %-6s %-10s %s\n", "RemoteAddress:Port", "Forward", "Weight", "ActiveConn", "InActConn")
	for _, s := range r.Services {
		fmt.Fprintf(&b, "\n%s/%s (%s)\n", s.Namespace, s.Name, s.Type)
		if len(s.VirtualServers) == 0 {
			b.WriteString("(no virtual server)\n")
		}
		for _, v := range s.VirtualServers {
			fmt.Fprintf(&b, "%s %s", keyString(v.Protocol, v.Address, v.Port), v.Scheduler)
			if v.Persistent {
				fmt.Fprintf(&b, " persistent %d", v.Timeout)
			}
			if !v.InKernel {
				b.WriteString(" [missing]")
			}
			b.WriteString("\n")
			for _, rs := range v.RealServers {
				writeRS(&b, rs)
			}
		}
	}
	if len(r.Drift) == 0 {
		b.WriteString("\nNo drift: the kernel holds what the API asks for.\n")
	} else {
		fmt.Fprintf(&b, "\nDRIFT (%d)\n", len(r.Drift))
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tSERVICE\tVIRTUAL SERVER\tOBJECT\tWANT\tKERNEL")
		for _, d := range r.Drift {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Kind, dash(d.Service), dash(d.VirtualServer), dash(d.Object), dash(d.Want), dash(d.Have))
		}
		_ = tw.Flush() // writes to a strings.Builder cannot fail
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "\nWARNINGS (%d): parts of Services the proxier skips too\n", len(r.Warnings))
		for _, s := range r.Warnings {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func writeRS(b *strings.Builder, rs RSReport) {
	ap := netip.AddrPortFrom(rs.Address, rs.Port).String()
	if rs.State == RSMissing {
		fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10s %-10s [missing]\n", ap, "Masq", rs.Weight, "-", "-")
		return
	}
	line := fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-10d", ap, "Masq", rs.Weight, rs.ActiveConns, rs.InactiveConns)
	if rs.State != RSOk {
		line += " [" + rs.State + "]"
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
