"""`mesh proxy-config`: istioctl's proxy-config tables, read from a live local Envoy.

    dump.fetch(admin_url)                  # /config_dump as a Dump (static + dynamic)
    writers.clusters(dump, ClusterFilter)  # rows of `proxy-config clusters`
    tabwriter.render(rows, padding)        # Go's text/tabwriter, as istioctl prints

Each writer follows its file of istioctl/pkg/writer/envoy (configdump/cluster.go,
listener.go, route.go; clusters/clusters.go for endpoints), so the columns, the order
and the placeholders are the ones a workshop sees on a cluster.
"""
