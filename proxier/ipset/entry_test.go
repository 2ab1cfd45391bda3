package ipset

import "testing"

func TestCanonical(t *testing.T) {
	v4 := func(typ Type) Set { return Set{Name: "S", Type: typ} }
	v6 := func(typ Type) Set { return Set{Name: "S", Type: typ, Family: IPv6} }
	ports := Set{Name: "P", Type: BitmapPort, PortFrom: 30000, PortTo: 32767}
	tests := []struct {
		set     Set
		in      Entry
		want    Entry
		wantErr bool
	}{
		{set: v4(HashIP), in: "10.0.0.1", want: "10.0.0.1"},
		{set: v4(HashIP), in: "10.0.0.1/32", want: "10.0.0.1"},
		{set: v4(HashIP), in: "10.0.0.0/30", wantErr: true},
		{set: v4(HashIP), in: "fd00::1", wantErr: true},
		{set: v6(HashIP), in: "FD00:0::1", want: "fd00::1"},
		{set: v6(HashIP), in: "10.0.0.1", wantErr: true},
		{set: v4(HashNet), in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{set: v4(HashNet), in: "10.1.2.3/32", want: "10.1.2.3"},
		{set: v4(HashNet), in: "10.1.2.3", want: "10.1.2.3"},
		{set: v4(HashNet), in: "0.0.0.0/0", wantErr: true},
		{set: v6(HashNet), in: "fd00::1/64", want: "fd00::/64"},
		{set: v4(HashIPPort), in: "10.96.0.10,UDP:53", want: "10.96.0.10,udp:53"},
		{set: v4(HashIPPort), in: "10.96.0.10,80", want: "10.96.0.10,tcp:80"},
		{set: v4(HashIPPort), in: "10.96.0.10,sctp:9", want: "10.96.0.10,sctp:9"},
		{set: v4(HashIPPort), in: "10.96.0.10,17:53", want: "10.96.0.10,udp:53"},
		{set: v4(HashIPPort), in: "10.96.0.10,tcp:70000", wantErr: true},
		{set: v4(HashIPPort), in: "10.96.0.10,foo:1", wantErr: true},
		{set: v4(HashIPPort), in: "10.96.0.10", wantErr: true},
		{set: v6(HashIPPort), in: "fd00::a,tcp:443", want: "fd00::a,tcp:443"},
		{set: v4(HashIPPortIP), in: "10.244.0.2,tcp:8080,10.244.0.2", want: "10.244.0.2,tcp:8080,10.244.0.2"},
		{set: v4(HashIPPortIP), in: "10.244.0.2,tcp:8080,fd00::2", wantErr: true},
		{set: v6(HashIPPortIP), in: "fd00::2,udp:53,fd00::2", want: "fd00::2,udp:53,fd00::2"},
		{set: v4(HashIPPortNet), in: "10.96.0.1,tcp:80,10.244.1.7/16", want: "10.96.0.1,tcp:80,10.244.0.0/16"},
		{set: v4(HashIPPortNet), in: "10.96.0.1,tcp:80,10.244.1.7", want: "10.96.0.1,tcp:80,10.244.1.7"},
		{set: v6(HashIPPortNet), in: "fd00::1,tcp:80,fd00::/64", want: "fd00::1,tcp:80,fd00::/64"},
		{set: ports, in: "30080", want: "30080"},
		{set: ports, in: "80", wantErr: true},
		{set: ports, in: "x", wantErr: true},
		{set: Set{Name: "X", Type: "list:set"}, in: "a", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.set, tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Canonical(%s %s, %q) error = %v, want error %v", tt.set.Type, tt.set.Family, tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Canonical(%s %s, %q) = %q, want %q", tt.set.Type, tt.set.Family, tt.in, got, tt.want)
		}
		if err == nil {
			// Canonical is a fixed point.
			if again, err := Canonical(tt.set, got); err != nil || again != got {
				t.Errorf("Canonical(%q) = %q, %v: not a fixed point", got, again, err)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		set Set
		ok  bool
	}{
		{Set{Name: "KUBE-LOOP-BACK", Type: HashIPPortIP}, true},
		{Set{Name: "KUBE-LOOP-BACK-6", Type: HashIPPortIP, Family: IPv6}, true},
		{Set{Name: "KUBE-NODE-PORT", Type: BitmapPort, PortFrom: 30000, PortTo: 32767}, true},
		{Set{Name: "KUBE-NODE-PORT", Type: BitmapPort}, false},
		{Set{Name: "", Type: HashIP}, false},
		{Set{Name: "KUBE-A-NAME-THAT-IS-FAR-TOO-LONG-X", Type: HashIP}, false},
		{Set{Name: "A", Type: HashIP, Family: "ipx"}, false},
		{Set{Name: "A", Type: "hash:mac"}, false},
	}
	for _, tt := range tests {
		if err := tt.set.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tt.set, err, tt.ok)
		}
	}
}
