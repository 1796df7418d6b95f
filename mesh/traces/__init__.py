"""The local trace receiver: OTLP (apps) and Zipkin (Envoy) in, the last N traces kept,
read back as JSON (`mesh traces`) or HTML (the frontend page links there).

    python -m mesh.traces --port 4318      what `mesh up` runs (unless --no-traces)
"""
