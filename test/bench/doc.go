// Package bench is kubevs's side-by-side benchmark in the real kernel (`make bench-e2e`,
// issue 12): the real kubevs-proxier against kube-proxy v1.36.3 in IPVS mode, one after the
// other in the same test VM, against the bed's real kube-apiserver (package bed).
//
// Run writes N selectorless Services with one TCP port and an EndpointSlice of E endpoints
// each straight to the API server (parallel writers; no pods are needed on the control-plane
// side), then for each proxier in turn, starting from a kernel with no virtual server:
//
//   - cold sync: from the process start to every Service's virtual server visible over
//     netlink, and the process CPU (its own and its waited-for children's, from
//     /proc/PID/stat: kube-proxy runs iptables-restore and ipset) over that time; then on to
//     every real server visible and the proxier's first sync reported in its metrics (kube-proxy
//     adds its ipset entries after its virtual servers), "settled";
//
//   - one-endpoint change latency: K times, one endpoint added to a random Service's slice;
//     from the API write's return to the new real server visible over netlink (a targeted
//     GET of that virtual server's destinations, polled every millisecond or two);
//
//     Each change waits at most the change timeout or, when the proxier's syncs so far were
//     slower, three of them (ChangeTimeout): kube-proxy's IPVS mode runs one ipset process
//     per set entry it adds and lists every set with another per sync, so under TCG one of
//     its syncs takes minutes, and a change it applies in its next sync is a latency;
//
//   - a burst of B such changes written by parallel writers: time from the first write to
//     every new real server visible, and the syncs the proxier did meanwhile (from its
//     kubeproxy_sync_proxy_rules_duration_seconds_count, which both proxiers export);
//
//   - idle CPU over a quiet period and the resident set size (VmRSS, VmHWM);
//
//   - full syncs from the settled point to the end of the idle period: how many, and their
//     mean duration (kubevs's mode="full" syncs; every kube-proxy sync is full);
//
// then stops the proxier, runs its own cleanup (`--cleanup`), and sweeps (Sweep): virtual
// servers, KUBE-* chains and sets and kube-ipvs0 still there are counted in the report's
// notes and removed (the guest is the benchmark's own). The changes of one proxier's turn
// stay in the API, so the next proxier starts with K+B more endpoints.
//
// Optionally (Config.Floor) it measures the raw netlink floor in the same guest: N virtual
// servers and E real servers each added through kubevs's own IPVS adapter (proxier/ipvs),
// one message at a time, as operations per second.
//
// The result is a Report, written as JSON and as a markdown table (WriteFiles). Figures
// under TCG are slow in absolute terms: compare the proxiers by their ratio in one run.
package bench
