"""Summarise py-spy raw (collapsed-stack) files: share of samples by leaf function (self) and
by any frame on the stack (inclusive).  python benchmarks/pyspy_summary.py FILE..."""
import sys, collections
for path in sys.argv[1:]:
    self_t, incl, total = collections.Counter(), collections.Counter(), 0
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        n = int(n); total += n
        frames = stack.split(";")
        self_t[frames[-1]] += n
        for f in set(frames): incl[f] += n
    print(f"== {path}: {total} samples")
    print(" self:")
    for f, n in self_t.most_common(15): print(f"  {100*n/total:5.1f}%  {f[:150]}")
    print(" inclusive:")
    for f, n in incl.most_common(40): print(f"  {100*n/total:5.1f}%  {f[:150]}")
