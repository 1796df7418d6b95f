"""A subset's outcomes during one interval, from Envoy's per-subset cluster stats.

Envoy names a subset's cluster `outbound|PORT|SUBSET|HOST` (as istiod does); a route
that sends to other Services (an HTTPRoute's backendRefs) has their clusters
`outbound|PORT||OTHER-HOST`, named here by the Service (`target_name`). Its counters
`upstream_rq_total` and `upstream_rq_5xx` are read live; its latency histogram
`upstream_rq_time` is read with `/stats?format=json&histogram_buckets=detailed`, whose
`totals` are the histogram's own bins (lower_bound, width, count) since Envoy started.
Both are totals: an interval's outcome is the difference of two reads.

Envoy merges histograms from its workers only when it flushes stats (every 5s by
default, `stats_flush_interval`; the local mesh's Envoy every 1s, mesh/envoy.py), while
counters are live. `settled` waits, bounded,
until the histogram has caught up with the completed requests, so that an interval's
latency covers the interval's requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from mesh import admin
from mesh.errors import StateError
from mesh.rollout.judge import SubsetMetrics

NAMESPACE = "default"
COUNTERS = ("upstream_rq_total", "upstream_rq_completed", "upstream_rq_5xx")
HISTOGRAM = "upstream_rq_time"
# Envoy's default stats_flush_interval (an Envoy not started by `mesh up`), plus room
FLUSH_WAIT_S = 7.0
POLL_S = 0.2

Bin = tuple[float, float]  # (lower_bound, width) of one histogram bin, in ms


def fqdn(service: str) -> str:
    return service if "." in service else f"{service}.{NAMESPACE}.svc.cluster.local"


def target_name(cluster: str, service: str) -> str | None:
    """What a rollout of SERVICE calls the outbound cluster CLUSTER: a subset of SERVICE's
    own host (`v2`), or another Service of the namespace, as an HTTPRoute's backendRef
    names it (`backend-v2`); None for a subset of another host (not a rollout's)."""
    parts = cluster.split("|")
    if len(parts) != 4 or parts[0] != "outbound":
        return None
    subset, host = parts[2], parts[3]
    if host == fqdn(service):
        return subset
    if subset:
        return None
    return host.removesuffix(f".{NAMESPACE}.svc.cluster.local")


@dataclass
class SubsetTotals:
    """One subset's totals at one read (summed over the Service's ports)."""

    counters: dict[str, int] = field(default_factory=dict)
    bins: dict[Bin, int] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return sum(self.bins.values())


Snapshot = dict[str, SubsetTotals]


def _filter(service: str) -> str:
    names = "|".join((*COUNTERS, HISTOGRAM))
    host = rf"{re.escape(fqdn(service))}|[^|]+\.{NAMESPACE}\.svc\.cluster\.local"
    return rf"^cluster\.(outbound\|\d+\|[^|]*\|(?:{host}))\.({names})$"


def parse_stats(data: dict, service: str) -> Snapshot:
    """The totals per subset in Envoy's `/stats?format=json&histogram_buckets=detailed`."""
    pattern = re.compile(_filter(service))
    out: Snapshot = {}
    for entry in data.get("stats", []):
        if "name" in entry:
            match = pattern.match(entry["name"])
            name = target_name(match.group(1), service) if match else None
            if match and name is not None and isinstance(entry.get("value"), int):
                totals = out.setdefault(name, SubsetTotals())
                stat = match.group(2)
                totals.counters[stat] = totals.counters.get(stat, 0) + entry["value"]
            continue
        for hist in (entry.get("histograms") or {}).get("details", []):
            match = pattern.match(hist.get("name", ""))
            name = target_name(match.group(1), service) if match else None
            if match is None or name is None:
                continue
            totals = out.setdefault(name, SubsetTotals())
            for b in hist.get("totals", []):
                key = (float(b["lower_bound"]), float(b["width"]))
                totals.bins[key] = totals.bins.get(key, 0) + int(b["count"])
    return out


#: One read of every Envoy: each one's totals per subset, by its admin URL. Kept apart,
#: not summed, so that an interval is the sum of each Envoy's own difference: a sidecar
#: that starts mid-interval (a replica scaled up or rolled) counts from zero, one that
#: restarted at the same address (its counters reset) counts from its restart, and one
#: that is gone (its replica stopped) keeps what it counted until it was last read.
Reading = dict[str, Snapshot]


def read(admin_urls: str | Sequence[str], service: str, client: httpx.Client) -> Reading:
    """The totals per subset of each Envoy of ADMIN_URLS (its admin, or several: with
    `mesh up --sidecars` a caller's requests are counted by its own sidecar). The first
    must answer (StateError); a later one that does not is left out: a sidecar stops
    with its replica, before the mesh's state file stops naming it."""
    urls = [admin_urls] if isinstance(admin_urls, str) else list(admin_urls)
    params = {"format": "json", "histogram_buckets": "detailed", "filter": _filter(service)}
    out: Reading = {}
    for i, url in enumerate(urls):
        try:
            out[url] = parse_stats(admin.get_json(f"{url}/stats", client, params), service)
        except StateError:
            if i == 0:
                raise
    return out


def summed(reading: Reading, subset: str) -> SubsetTotals:
    """SUBSET's totals over every Envoy of READING."""
    out = SubsetTotals()
    for snapshot in reading.values():
        totals = snapshot.get(subset)
        if totals is None:
            continue
        for stat, value in totals.counters.items():
            out.counters[stat] = out.counters.get(stat, 0) + value
        for key, count in totals.bins.items():  # Envoy's bins are the same everywhere
            out.bins[key] = out.bins.get(key, 0) + count
    return out


def merged(last_seen: Reading, latest: Reading) -> Reading:
    """LATEST, plus what LAST_SEEN had of Envoys LATEST no longer reads (stopped sidecars)."""
    return {**{u: s for u, s in last_seen.items() if u not in latest}, **latest}


def settled(
    admin_urls: str | Sequence[str],
    service: str,
    subset: str,
    client: httpx.Client,
    wait_s: float = FLUSH_WAIT_S,
) -> Reading:
    """Totals whose SUBSET histogram includes every request of SUBSET completed when it
    was called: counters read now, histograms read again until Envoy's next flush has
    merged them (at most WAIT_S)."""
    first = read(admin_urls, service, client)
    done = summed(first, subset).counters.get("upstream_rq_completed", 0)
    deadline = time.monotonic() + wait_s
    latest = first
    while summed(latest, subset).samples < done:
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_S)  # Envoy merges histograms on its flush timer
        latest = read(admin_urls, service, client)
    out: Reading = {}
    for url, snapshot in first.items():
        later = latest.get(url, {})
        out[url] = {
            s: SubsetTotals(t.counters, later[s].bins if s in later else t.bins)
            for s, t in snapshot.items()
        }
    return out


def bins_delta(before: dict[Bin, int], after: dict[Bin, int]) -> dict[Bin, int]:
    """The samples recorded between two reads of one histogram, bin by bin."""
    out = {}
    for key, count in after.items():
        diff = count - before.get(key, 0)
        if diff > 0:
            out[key] = diff
    return out


def quantile(bins: dict[Bin, int], q: float) -> float | None:
    """The Q quantile (0-1) of BINS, interpolated within its bin as Envoy does; None
    without samples."""
    total = sum(bins.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for (lower, width), count in sorted(bins.items()):
        if seen + count >= rank:
            return lower + width * (rank - seen) / count
        seen += count
    lower, width = max(bins)
    return lower + width


def own_delta(before: SubsetTotals | None, after: SubsetTotals) -> SubsetTotals:
    """What one Envoy counted between two reads: all of AFTER if it was not read before or
    has restarted since (a counter or the histogram went down: Envoy's stats start again
    at zero; as Prometheus's `increase()`, a restart that counted past the old totals
    already goes unseen)."""
    if before is None or after.samples < before.samples:
        return after
    if any(v < before.counters.get(k, 0) for k, v in after.counters.items()):
        return after
    counters = {k: max(0, v - before.counters.get(k, 0)) for k, v in after.counters.items()}
    return SubsetTotals(counters, bins_delta(before.bins, after.bins))


def interval(before: Reading, after: Reading, subset: str) -> SubsetMetrics:
    """SUBSET's outcomes between two readings: each Envoy's own difference, summed."""
    deltas = {
        url: {subset: own_delta(before.get(url, {}).get(subset), snapshot[subset])}
        for url, snapshot in after.items()
        if subset in snapshot
    }
    total = summed(deltas, subset)
    requests = total.counters.get("upstream_rq_total", 0)
    # the histogram lags the counters by a flush: no requests, no latency to speak of
    p99 = quantile(total.bins, 0.99) if requests else None
    return SubsetMetrics(requests, total.counters.get("upstream_rq_5xx", 0), p99)
