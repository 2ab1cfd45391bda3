package ipvs

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tableText is /proc/net/ip_vs as kernel 6.1 prints it (the VM test
// TestRealServerTableMatchesDumps checks the parse against the kernel itself).
const tableText = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A600001:0050 rr 
  -> 0AF40002:1F90      Masq    1      0          0         
  -> 0AF40003:1F90      Masq    0      3          12        
UDP  0A60000A:0035 rr persistent 10800 FFFFFFFF
  -> 0AF40004:0035      Masq    1      0          0         
FWM  00000001 rr 
  -> 0AF40009:0050      Route   1      0          0         
SCTP 0A600002:0B59 sh 
TCP  [fd00:0000:0000:0000:0000:0000:0000:000a]:01BB rr persistent 60 128
  -> [fd01:0000:0000:0000:0000:0000:0000:0002]:2000    Masq    5      1          0         
`

func TestParseTable(t *testing.T) {
	got, err := ParseTable([]byte(tableText))
	if err != nil {
		t.Fatal(err)
	}
	key := func(s string, p Protocol, port uint16) Key {
		return Key{Address: netip.MustParseAddr(s), Protocol: p, Port: port}
	}
	rs := func(s string, port uint16, w, a, i int) RealServer {
		return RealServer{Address: netip.MustParseAddr(s), Port: port, Weight: int32(w), ActiveConns: uint32(a), InactiveConns: uint32(i)}
	}
	want := map[Key][]RealServer{
		key("10.96.0.1", TCP, 80):    {rs("10.244.0.2", 8080, 1, 0, 0), rs("10.244.0.3", 8080, 0, 3, 12)},
		key("10.96.0.10", UDP, 53):   {rs("10.244.0.4", 53, 1, 0, 0)},
		key("10.96.0.2", SCTP, 2905): {},
		key("fd00::a", TCP, 443):     {rs("fd01::2", 8192, 5, 1, 0)},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("ParseTable (-want +got):\n%s", d)
	}
}

// A seq_file read in several calls may print a virtual server twice when the table changes
// between them: the parse cannot tell which copy is current, so it leaves the key out (the
// caller reads it over netlink), and keeps every other.
func TestParseTableLeavesOutKeysPrintedTwice(t *testing.T) {
	text := tableText + "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90      Masq    1      0          0\n" +
		"TCP  0A600001:0050 rr \n"
	got, err := ParseTable([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}]; ok {
		t.Error("a key printed twice (then a third time) was kept")
	}
	if len(got) != 3 {
		t.Errorf("kept %d keys, want the 3 printed once", len(got))
	}
}

func TestParseTableErrorsNameTheLine(t *testing.T) {
	for name, bad := range map[string]string{
		"short address":      "TCP  0A6001:0050 rr \n",
		"no port":            "TCP  0A600001 rr \n",
		"bad hex":            "TCP  0A60000G:0050 rr \n",
		"v4 in brackets":     "TCP  [10.96.0.1]:0050 rr \n",
		"dest columns":       "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90 Masq 1 0\n",
		"dest weight":        "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90 Masq x 0 0\n",
		"dest address":       "TCP  0A600001:0050 rr \n  -> 0AF4002:1F90 Masq 1 0 0\n",
		"dest without arrow": "TCP  0A600001:0050 rr \n  => 0AF40002:1F90 Masq 1 0 0\n",
		"weight too large":   "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90 Masq 2147483648 0 0\n",
	} {
		t.Run(name, func(t *testing.T) {
			header := strings.Join(strings.SplitN(tableText, "\n", 4)[:3], "\n") + "\n"
			_, err := ParseTable([]byte(header + bad))
			if err == nil || !strings.Contains(err.Error(), "line 4") && !strings.Contains(err.Error(), "line 5") {
				t.Errorf("ParseTable(%q) = %v, want an error naming the line", bad, err)
			}
		})
	}
}

// FuzzParseTable: any text parses or fails, never panics, and what it keeps is valid.
func FuzzParseTable(f *testing.F) {
	f.Add([]byte(tableText))
	f.Add([]byte("a\nb\nc\nTCP  0A600001:0050 rr\n  -> [::1]:0001 Masq -1 0 0\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		got, err := ParseTable(text)
		if err != nil {
			return
		}
		for k, rss := range got {
			if !k.Address.IsValid() || k.Address.Is4In6() || rss == nil {
				t.Fatalf("kept %v -> %v", k, rss)
			}
			for _, rs := range rss {
				if !rs.Address.IsValid() {
					t.Fatalf("real server without address under %v", k)
				}
			}
		}
	})
}

// BenchmarkParseTable parses the table of 1,000 virtual servers x 10 real servers, as
// /proc/net/ip_vs prints it.
func BenchmarkParseTable(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "TCP  0A60%02X%02X:0050 rr \n", i>>8, i&0xff)
		for j := range 10 {
			fmt.Fprintf(&sb, "  -> 0AF4%02X%02X:1F90      Masq    1      0          0         \n", i>>4&0xff, (i<<4|j)&0xff)
		}
	}
	text := []byte(sb.String())
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if t, err := ParseTable(text); err != nil || len(t) != 1000 {
			b.Fatal(len(t), err)
		}
	}
}

// TestParseTableCounts: connection counts outside a uint32 are clamped (they only decide
// when a drained real server goes), the weight is the kernel's int.
func TestParseTableCounts(t *testing.T) {
	header := strings.Join(strings.SplitN(tableText, "\n", 4)[:3], "\n") + "\n"
	got, err := ParseTable([]byte(header + "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90 Masq -3 -1 4294967296\n"))
	if err != nil {
		t.Fatal(err)
	}
	rss := got[Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}]
	if len(rss) != 1 || rss[0].Weight != -3 || rss[0].ActiveConns != 0 || rss[0].InactiveConns != math.MaxUint32 {
		t.Errorf("real servers %+v, want weight -3, counts 0 and %d", rss, uint32(math.MaxUint32))
	}
}
