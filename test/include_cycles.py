#!/usr/bin/python3
"""Print every include cycle among mlcache's C units; exit 1 if there is one.

A unit is a file stem under src/ (keys for keys.c + keys.h).  Unit A
depends on unit B when A.c or A.h includes "B.h" (the project's own
headers only; system and PostgreSQL headers are ignored).  The cycles
printed are the elementary circuits of that graph, each once, starting
at its alphabetically smallest unit.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def unit_graph():
    """Map each unit to the set of units it includes (itself excluded)."""
    names = sorted(os.listdir(SRC))
    units = {os.path.splitext(n)[0] for n in names if n.endswith((".c", ".h"))}
    graph = {u: set() for u in units}
    for name in names:
        if not name.endswith((".c", ".h")):
            continue
        unit = os.path.splitext(name)[0]
        with open(os.path.join(SRC, name), encoding="utf-8") as f:
            for dep in INCLUDE.findall(f.read()):
                dep = os.path.basename(dep)
                if dep in units and dep != unit:
                    graph[unit].add(dep)
    return graph


def cycles(graph):
    """Elementary circuits, each reported once from its smallest unit."""
    found = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(path + [start])
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return found


def main():
    found = cycles(unit_graph())
    for cycle in sorted(found, key=lambda c: (len(c), c)):
        print(" -> ".join(cycle))
    print("%d include cycle(s) among src units" % len(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
