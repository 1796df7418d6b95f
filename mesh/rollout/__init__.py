"""`mesh rollout`: an automated canary on the local mesh, as Flagger runs one in a cluster.

Each step sets the weights of SERVICE's default route (a new config generation of the
running `mesh up`), waits until Envoy serves them, measures one interval of the canary's
and the stable subset's outcomes from Envoy's per-subset cluster stats, and judges the
canary against thresholds. Every step passes: promoted. One fails: rolled back.
When an HTTPRoute is bound to SERVICE (GAMMA), the names are the Services of its
backendRefs and their clusters `outbound|PORT||SERVICE-HOST` (mesh/loop/weights.py).

- judge.py    thresholds and the verdict of one step
- metrics.py  per-interval deltas of Envoy's cluster counters and latency histogram
- served.py   the weights Envoy serves, read from its config dump
- target.py   the mesh a rollout drives: a `mesh up` process, or a LocalMesh in-process
- plan.py     the rollout's input checked (steps, subsets, the lock of one rollout)
- run.py      the step loop, the rollback, the restore on Ctrl-C
- report.py   the table and the JSON
"""
