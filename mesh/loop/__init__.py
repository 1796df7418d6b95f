"""The local mesh's control loop: the parts a cluster runs, played on one machine.

    kubelet.py      runs, probes and restarts every replica and Envoy (prober.py, pods.py)
    endpoints.py    the endpoints controller: ready replicas -> EDS files
    generation.py   istiod's build: read, check, translate, validate -> a generation
    push.py         istiod's push: a generation -> the running Envoy's xDS files
    watch.py        istiod's watch of the manifests (debounced)
    rollout.py      the Deployment controller: scale, rolling update, removal
    workloads.py    a Deployment as a local process template
    rotation.py     Envoy's view of a replica (listed, dropped)
    events.py       what happened, as `kubectl get events` (`mesh events`)

mesh/runner.py (LocalMesh) wires them together.
"""
