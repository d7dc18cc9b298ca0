"""The harness's own check: a Core log line at WARNING or above that names the add-on fails the
test. Its parsing on known text, and on a real Core's log (each Core). And the ports it gives."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.ha_harness import CORES, HomeAssistant, log_records, selected_cores
from tests.helpers import ports
from tests.helpers.ports import free_port, kept_port
from tests.helpers.waiting import eventually_async

LOG = """\
2025-04-30 12:00:00.100 WARNING (MainThread) [homeassistant.bootstrap] Skipping pip installation
2025-04-30 12:00:01.200 ERROR (MainThread) [homeassistant.components.mqtt] Bad config for
sec1000_v1
Traceback (most recent call last):
ValueError: nope
2025-04-30 12:00:02.300 INFO (MainThread) [homeassistant.core] sec1000 is only news
2025-04-30 12:00:03.400 CRITICAL (MainThread) [custom] SEC1000 went away
"""


def test_records_keep_their_continuation_lines_and_only_warnings_about_the_addon_count(
    tmp_path: Path,
) -> None:
    records = log_records(LOG)
    assert len(records) == 4
    assert records[1].endswith("ValueError: nope")  # the traceback belongs to its record
    ha = HomeAssistant(CORES[0], tmp_path / "hass", tmp_path)
    ha.log.write_text("===== start 1 on port 1\n" + LOG)
    problems = ha.addon_problems()
    assert [p.split(" ")[2] for p in problems] == ["ERROR", "CRITICAL"]
    assert ha.addon_problems(since=ha.log_size()) == []


def test_every_core_is_selected_unless_one_is_asked_for(pytestconfig: pytest.Config) -> None:
    chosen = pytestconfig.getoption("ha_core")
    expected = [c for c in CORES if not chosen or c.version in chosen]
    assert list(selected_cores(pytestconfig)) == expected


@pytest.mark.homeassistant
@pytest.mark.ha_log_allows(r"harness self-test")
async def test_a_warning_about_the_addon_in_a_real_core_log_is_found(
    home_assistant: HomeAssistant,
) -> None:
    since = home_assistant.log_size()
    message = "sec1000: harness self-test, a warning that names the add-on"
    async with (
        aiohttp.ClientSession(headers=home_assistant.headers) as session,
        session.post(
            f"{home_assistant.api_url}/services/system_log/write",
            json={"message": message, "level": "warning", "logger": "sec1000.harness"},
        ) as response,
    ):
        assert response.status == 200

    async def found() -> bool:
        return any(message in record for record in home_assistant.addon_problems(since))

    await eventually_async(found, 15, "the warning in Core's log")


def test_a_restarting_server_gets_a_port_no_port_0_bind_can_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, _high = (
        int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    )
    taken = [kept_port() for _ in range(5)]
    assert all(port < low for port in taken)  # a Core down for a restart keeps its port
    assert len(set(taken)) == 5
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    assert all(ports.KEPT_BASE + 2 * ports.KEPT_BLOCK <= kept_port() < low for _ in range(5))
    assert free_port() >= low  # a server that starts once takes any free port
