#!/usr/bin/python3
"""bench/share.py: inclusive shares of functions in a perf profile.

    perf script -i NAME.data -F ip,sym | /usr/bin/python3 bench/share.py [-c N] FUNC...

For each FUNC: the share of all samples whose call stack contains it
(counted once per sample, so recursion does not count twice), then its
N (default 8) largest direct callees by inclusive share.  The last line,
"any of them", is the share of samples under at least one of the FUNCs,
which is what the FUNCs cost together when none calls another.  Reads
perf script's output on standard input: one frame per line (address,
then symbol), leaf first, a blank line between samples.  Nothing here
asserts.
"""
import collections
import sys


def samples(lines):
    cur = []
    for line in lines:
        line = line.strip()
        if not line:
            if cur:
                yield cur
            cur = []
            continue
        parts = line.split(None, 1)
        sym = parts[1] if len(parts) > 1 else parts[0]
        cur.append(sym.split('+0x')[0])
    if cur:
        yield cur


def main(argv):
    top = 8
    if len(argv) > 2 and argv[1] == '-c':
        top = int(argv[2])
        argv = argv[2:]
    funcs = argv[1:]
    if not funcs:
        sys.exit(__doc__)
    total = 0
    inclusive = collections.Counter()
    callees = {f: collections.Counter() for f in funcs}
    anyof = 0
    for stack in samples(sys.stdin):
        total += 1
        hit = False
        for f in funcs:
            if f in stack:
                hit = True
                inclusive[f] += 1
                i = len(stack) - 1 - stack[::-1].index(f)  # outermost
                callees[f][stack[i - 1] if i > 0 else '(self)'] += 1
        anyof += hit
    if total == 0:
        sys.exit('no samples on standard input')
    print(f'samples: {total}')
    for f in funcs:
        print(f'{f}: {100.0 * inclusive[f] / total:.2f}%')
        for c, n in callees[f].most_common(top):
            print(f'    {c}: {100.0 * n / total:.2f}%')
    print(f'any of them: {100.0 * anyof / total:.2f}%')


if __name__ == '__main__':
    main(sys.argv)
