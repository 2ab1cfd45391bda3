#!/usr/bin/env python3
"""Results of an upstream-e2e.sh run, read from e2e.test's output (e2e.log), spec by spec.

  parse.py E2E_LOG [SPECS SKIP_REGEX]
      one line a spec: result, seconds, spec, and for a skip or a failure its reason; with
      SPECS (specs-v1.36.3.txt) and the run's UPSTREAM_SKIP, the specs of the list the run
      neither skipped by regex nor reached are listed as "not-reached" (cut by the bound).
  parse.py --compare NAME_A RESULTS_A NAME_B RESULTS_B
      a side-by-side table of two such files: counts, then every spec whose result differs.
  parse.py --merge RESULTS...
      one column from runs of the same list that each reached part of it (same seed, a run
      cut by its bound, then one focused on what it did not reach): a spec takes its result
      from the last file that ended it (passed, failed, skipped), else from the first file.

e2e.log is read rather than the JUnit report because a run cut by its bound writes no report.
"""
import collections
import re
import sys

RESULT = re.compile(r'^(?:• (?:\[(FAILED|TIMEDOUT|PANICKED|INTERRUPTED)\] )?|S \[SKIPPED\] )\[([0-9.]+) seconds\]')
HEADER = re.compile(r'^\[sig-network\] ')


def title(header):
    """The spec's name as --list-tests prints it: the header less its trailing labels."""
    return re.sub(r' \[sig-network(, [^\]]*)?\]$', '', header.replace(' [It] ', ' ')).strip()


def parse(path):
    lines = open(path, errors='replace').read().split('\n')
    out, current = [], None
    for i, line in enumerate(lines):
        if HEADER.match(line) and ' [It] ' not in line:
            current = line
            continue
        m = RESULT.match(line)
        if not m:
            continue
        kind = 'skipped' if line.startswith('S') else ('failed' if m.group(1) else 'passed')
        name, reason = title(current or ''), ''
        if kind != 'passed':
            # The summary after the result line: the spec's name again, then "[SKIPPED] why" or
            # "[FAILED] why" (the first line of it).
            for j in range(i + 1, min(len(lines), i + 40)):
                s = lines[j].strip()
                r = re.match(r'^\[(SKIPPED|FAILED|TIMEDOUT|PANICKED|INTERRUPTED)\] (?!in \[)(.*)', s)
                if r:
                    reason = r.group(2)
                    break
                if s.startswith('------'):
                    break
        out.append((kind, m.group(2), name, reason))
        current = None
    if current:  # a spec started but never ended: the run's bound cut it
        out.append(('cut', '?', title(current), 'running when the run was cut'))
    return out


def main(argv):
    if argv[:1] == ['--compare']:
        return compare(*argv[1:])
    if argv[:1] == ['--merge']:
        return merge(argv[1:])
    res = parse(argv[0])
    if len(argv) >= 3:
        skip = re.compile(argv[2])
        seen = {n for _, _, n, _ in res}
        for spec in open(argv[1]):
            spec = spec.strip()
            if spec and not spec.startswith('#') and spec not in seen and not skip.search(spec):
                res.append(('not-reached', '-', spec, ''))
    counts = collections.Counter(k for k, _, _, _ in res)
    print('# ' + ', '.join(f'{counts[k]} {k}' for k in ('passed', 'failed', 'skipped', 'cut', 'not-reached')))
    for kind, secs, name, reason in res:
        print(f'{kind} {secs} {name}' + (f'  -- {reason}' if reason else ''))


def load(path):
    res = {}
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        kind, secs, rest = line.rstrip('\n').split(' ', 2)
        name, _, reason = rest.partition('  -- ')
        res[name] = (kind, secs, reason)
    return res


def compare(name_a, path_a, name_b, path_b):
    a, b = load(path_a), load(path_b)
    kinds = ('passed', 'failed', 'skipped', 'cut', 'not-reached')
    ca = collections.Counter(k for k, _, _ in a.values())
    cb = collections.Counter(k for k, _, _ in b.values())
    w = max(len(k) for k in kinds)
    print(f'| {"":{w}} | {name_a} | {name_b} |')
    print(f'|{"-" * (w + 2)}|{"-" * (len(name_a) + 2)}|{"-" * (len(name_b) + 2)}|')
    for k in kinds:
        print(f'| {k:{w}} | {ca[k]:>{len(name_a)}} | {cb[k]:>{len(name_b)}} |')
    print()
    print(f'Specs whose result differs ({name_a} / {name_b}):')
    for spec in sorted(set(a) | set(b)):
        ka, kb = a.get(spec, ('absent', '', ''))[0], b.get(spec, ('absent', '', ''))[0]
        if ka != kb:
            print(f'  {ka} / {kb}: {spec}')


def merge(paths):
    ended = ('passed', 'failed', 'skipped')
    res = {}
    for path in paths:
        for name, (kind, secs, reason) in load(path).items():
            if name not in res or kind in ended:
                res[name] = (kind, secs, reason)
    counts = collections.Counter(k for k, _, _ in res.values())
    print('# ' + ', '.join(f'{counts[k]} {k}' for k in ('passed', 'failed', 'skipped', 'cut', 'not-reached')))
    for name, (kind, secs, reason) in res.items():
        print(f'{kind} {secs} {name}' + (f'  -- {reason}' if reason else ''))


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
