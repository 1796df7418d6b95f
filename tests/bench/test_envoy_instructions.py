"""bench/envoy_instructions.py: the dump reader, the command line, and one real count of
Envoy under callgrind (instructions, never time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import envoy_instructions
from bench.processes import free_port
from bench.servers import envoy_floor_bootstrap

# A callgrind dump as callgrind writes one (format of valgrind's docs,
# "Callgrind Format Specification"): positions may be relative (+n, -n) or repeated (*),
# and the line after `calls=` is the callee's inclusive cost, not this function's.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 42
cmd: envoy -c floor.yaml
part: 1

positions: line
events: Ir
summary: 18446744073709551000

ob=(1) /envoy
fl=(1) ???
fn=(1) 0x0000000001a2b3c0
0 10
+2 5
* 3
cfn=(2) 0x0000000001a2b400
calls=4 0
0 100
-1 7

fn=(2)
0 40
totals: 18446744073709551000
"""


def test_the_dump_reader_sums_self_cost_lines_and_skips_call_costs(tmp_path: Path) -> None:
    dump = tmp_path / "cg.42.1-01"
    dump.write_text(DUMP)
    # 10 + 5 + 3 + 7 in fn 1, 40 in fn 2; not the 100 the call line bills, nor summary
    assert envoy_instructions.self_instructions(dump) == 65


def test_an_unknown_variant_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        envoy_instructions.main(["sideways"])
    assert exit_info.value.code == 2
    assert "unknown variant 'sideways'" in capsys.readouterr().err


@pytest.mark.integration
def test_envoys_floor_under_callgrind_counts_a_plausible_number_per_request(
    tmp_path: Path,
) -> None:
    """Envoy answering by itself runs ~75,000 instructions a request (x86-64, Envoy 1.40).
    The bounds catch the ways a count goes wrong: nothing collected (0), callgrind's
    wrapped totals (~1.8e19), or the warm-up counted in (start-up is ~10^9)."""
    port = free_port()
    config = tmp_path / "floor.yaml"
    config.write_text(yaml.safe_dump(envoy_floor_bootstrap('{"tasks": []}', port, free_port())))
    per_request = envoy_instructions.count(config, port, tmp_path / "out", 50, 2)
    assert 10_000 < per_request < 2_000_000
    assert list((tmp_path / "out").glob("cg.*")), "callgrind wrote its dumps there"
