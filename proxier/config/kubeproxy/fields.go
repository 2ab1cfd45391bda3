package kubeproxy

// The list of KubeProxyConfiguration fields and what kubevs does with each. A path not in
// the list is not a v1alpha1 field: ignored, as kube-proxy's lenient decoding drops it.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// rule is what kubevs does with one field. verdict "" means honoured. A container is walked
// into, its own fields classified one by one; any other field is reported as a whole.
type rule struct {
	verdict   Verdict
	reason    string
	container bool
	// quiet lists values (as decoded from JSON) not worth reporting: kube-proxy's defaults.
	quiet []any
	// refuse, for a honoured field, returns why its value is refused ("" when accepted).
	refuse func(v any) string
}

func honoured() rule { return rule{} }

func ignored(reason string, quiet ...any) rule {
	return rule{verdict: Ignored, reason: reason, quiet: quiet}
}

const (
	reasonIPTables = "used by kube-proxy's iptables mode only"
	reasonNFTables = "used by kube-proxy's nftables mode only"
	reasonWindows  = "used on Windows only"
)

// fields is the list of every v1alpha1 field (and the two top-level extensions syncPeriod
// and minSyncPeriod, which kube-proxy's newer internal configuration has) by its path.
var fields = map[string]rule{
	"apiVersion":       honoured(),
	"kind":             honoured(),
	"hostnameOverride": honoured(),
	"clusterCIDR":      honoured(),
	"nodePortAddresses": {refuse: func(v any) string {
		l, _ := v.([]any)
		if len(l) > 1 && slices.Contains(l, any("primary")) {
			return `"primary" must be the only entry`
		}
		return ""
	}},
	"healthzBindAddress": honoured(),
	"metricsBindAddress": honoured(),
	"syncPeriod":         honoured(),
	"minSyncPeriod":      honoured(),
	"mode": {refuse: func(v any) string {
		if s, _ := v.(string); s != "" && s != "ipvs" {
			return fmt.Sprintf("mode %q is not supported: kubevs implements kube-proxy's ipvs mode only", s)
		}
		return ""
	}},
	"detectLocalMode": {refuse: func(v any) string {
		if s, _ := v.(string); s != "" && s != "ClusterCIDR" {
			return fmt.Sprintf("detectLocalMode %q is not supported: kubevs tells pod traffic by clusterCIDR only", s)
		}
		return ""
	}},
	"detectLocal": ignored("used only with detectLocalMode BridgeInterface or InterfaceNamePrefix, which kubevs refuses"),

	"ipvs":               {container: true},
	"ipvs.syncPeriod":    honoured(),
	"ipvs.minSyncPeriod": honoured(),
	"ipvs.scheduler":     honoured(),
	"ipvs.excludeCIDRs":  honoured(),
	"ipvs.strictARP":     honoured(),
	"ipvs.tcpTimeout":    honoured(),
	"ipvs.tcpFinTimeout": honoured(),
	"ipvs.udpTimeout":    honoured(),

	"iptables":               {container: true},
	"iptables.masqueradeAll": honoured(),
	"iptables.masqueradeBit": {refuse: func(v any) string {
		if n, ok := number(v); ok && n != 14 {
			return fmt.Sprintf("masqueradeBit %v is not supported: kubevs marks packets to masquerade with bit 14 (0x4000), kube-proxy's default", v)
		}
		return ""
	}},
	"iptables.localhostNodePorts": ignored("kube-proxy's ipvs mode never serves NodePorts on localhost, nor does kubevs unless nodePortAddresses lists a loopback CIDR", true),
	"iptables.syncPeriod":         ignored(reasonIPTables+"; kubevs reads ipvs.syncPeriod", "30s"),
	"iptables.minSyncPeriod":      ignored(reasonIPTables+"; kubevs reads ipvs.minSyncPeriod", "1s"),
	"nftables":                    ignored(reasonNFTables, map[string]any{"masqueradeBit": int64(14), "masqueradeAll": false, "syncPeriod": "30s", "minSyncPeriod": "1s"}),
	"winkernel":                   ignored(reasonWindows),
	"windowsRunAsService":         ignored(reasonWindows),

	"conntrack":                       {container: true},
	"conntrack.maxPerCore":            honoured(),
	"conntrack.min":                   honoured(),
	"conntrack.tcpEstablishedTimeout": honoured(),
	"conntrack.tcpCloseWaitTimeout":   honoured(),
	"conntrack.tcpBeLiberal":          honoured(),
	"conntrack.udpTimeout":            honoured(),
	"conntrack.udpStreamTimeout":      honoured(),

	"clientConnection":                    {container: true},
	"clientConnection.kubeconfig":         honoured(),
	"clientConnection.qps":                honoured(),
	"clientConnection.burst":              honoured(),
	"clientConnection.contentType":        honoured(),
	"clientConnection.acceptContentTypes": honoured(),

	"bindAddress":                 ignored("kubevs takes the node's primary IPs from its Node object", "0.0.0.0", "::"),
	"bindAddressHardFail":         ignored("kubevs-proxier always exits when it cannot listen on its healthz or metrics address"),
	"enableProfiling":             honoured(),
	"showHiddenMetricsForVersion": ignored("kubevs-proxier hides no metrics"),
	"featureGates":                ignored("kube-proxy's feature gates do not apply to kubevs"),
	"logging":                     ignored("set kubevs-proxier's logging with its klog flags (-v, --vmodule)"),
	"oomScoreAdj":                 ignored("set the OOM score of the DaemonSet's container or the systemd unit", int64(-999)),
	"configSyncPeriod":            ignored("kubevs-proxier's informers do not resync periodically: a full sync every syncPeriod compares the kernel with the last state seen", "15m0s"),
	"portRange":                   ignored("unused by kube-proxy itself since its userspace mode was removed"),
}

// classify walks the decoded file and reports every field not honoured (each path once)
// and every honoured field whose value is refused.
func classify(raw map[string]any) Report {
	var rep Report
	walk("", raw, &rep)
	return rep
}

func walk(prefix string, m map[string]any, rep *Report) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		r, known := fields[path]
		switch {
		case !known:
			if !isZero(v) {
				*rep = append(*rep, Finding{Path: path, Verdict: Ignored, Reason: "not a field of " + APIVersion + " " + Kind + " (kube-proxy's lenient decoding drops it too)"})
			}
		case r.container:
			if sub, ok := v.(map[string]any); ok {
				walk(path, sub, rep)
			}
		case r.refuse != nil:
			if why := r.refuse(v); why != "" {
				*rep = append(*rep, Finding{Path: path, Verdict: Refused, Reason: why})
			}
		case r.verdict != "":
			if !isZero(v) && !isQuiet(v, r.quiet) {
				*rep = append(*rep, Finding{Path: path, Verdict: r.verdict, Reason: r.reason})
			}
		}
	}
}

func isQuiet(v any, quiet []any) bool {
	for _, q := range quiet {
		if equalJSON(v, q) {
			return true
		}
	}
	return false
}

// equalJSON compares decoded JSON values; durations compare by value ("24h" == "24h0m0s").
func equalJSON(a, b any) bool {
	if na, ok := number(a); ok {
		nb, ok := number(b)
		return ok && na == nb
	}
	switch a := a.(type) {
	case string:
		bs, ok := b.(string)
		if !ok {
			return false
		}
		if a == bs {
			return true
		}
		da, errA := time.ParseDuration(a)
		db, errB := time.ParseDuration(bs)
		return errA == nil && errB == nil && da == db
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range a {
			if isZero(v) {
				continue // unset: kube-proxy's default
			}
			if bv, ok := bm[k]; ok {
				if !equalJSON(v, bv) {
					return false
				}
			} else if !isZero(v) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// isZero reports a value that says nothing: null, false, 0, "", "0", a zero duration, and
// a list or object of such values.
func isZero(v any) bool {
	if n, ok := number(v); ok {
		return n == 0
	}
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		if v == "" || v == "0" {
			return true
		}
		d, err := time.ParseDuration(v)
		return err == nil && d == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, x := range v {
			if !isZero(x) {
				return false
			}
		}
		return true
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case interface{ String() string }:
		f, err := strconv.ParseFloat(n.String(), 64)
		return f, err == nil
	}
	return 0, false
}
