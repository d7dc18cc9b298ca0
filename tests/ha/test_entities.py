"""The entities' names and ids: the first controller keeps the old integration's, another one
has `sec1000_<name>_…`."""

from __future__ import annotations

import hashlib

from sec1000.commands import CommandName
from sec1000.ha.discovery import (
    DeviceInfo,
    by_command_topic,
    components,
    discovery_topic,
    entity_ids,
    retained_topics,
)
from sec1000.ha.entities import (
    ALL_HELPERS,
    ALL_SENSORS,
    FEEDBACK_SENSORS,
    helpers_for,
    helpers_of,
    id_prefix,
    name_prefix,
    sensors_of,
)
from sec1000.ha.notifications import OFFLINE_NOTIFICATION, notification_id, titled
from sec1000.options import FIRST_CONTROLLER, Options

from tests.helpers.packaging import CONTRACT_HELPERS, CONTRACT_SENSORS


def test_the_datetime_feedback_keeps_its_old_name() -> None:
    sensor = FEEDBACK_SENSORS[CommandName.SET_DATETIME]
    assert sensor.name == "SEC1000 Set Date and Time - Feedback"
    assert sensor.entity_id == "sensor.sec1000_set_datetime_feedback"


# ---------------------------------------------------------------- several controllers

# sha256 of the first controller's discovery message under OPTIONS: as the add-on sent it
# before several controllers (commit bd4ccde), the first controller keeping every id, name,
# unique id and topic, byte for byte; since 0.2.0 its availability also says Core's default
# payloads outright (online/offline), which changes no id; since 0.3.0 the export state sensor
# has an attributes topic (its headline), which changes no id either.
FIRST_MESSAGE_SHA256 = "674e2ea58a1a1ba148e323c8de4ff730ccce0f1c4fb88820b9d445c39143d14b"
OPTIONS = Options.from_mapping(
    {"host": "192.168.1.20", "price_entity": "sensor.price", "price_policy": True}
)
INFO = DeviceInfo("1.2.3", "homeassistant://hassio/ingress/x")


def test_the_first_controller_keeps_every_id_of_today() -> None:
    assert id_prefix(FIRST_CONTROLLER) == "sec1000" and name_prefix(FIRST_CONTROLLER) == "SEC1000"
    assert sensors_of(FIRST_CONTROLLER) == ALL_SENSORS
    assert {sensor.entity_id for sensor in ALL_SENSORS} == CONTRACT_SENSORS
    assert {helper.entity_id for helper in helpers_for("", FIRST_CONTROLLER)} == CONTRACT_HELPERS
    assert helpers_of(FIRST_CONTROLLER) == ALL_HELPERS
    message = INFO.message(OPTIONS, FIRST_CONTROLLER)
    assert message == INFO.message(OPTIONS)
    assert hashlib.sha256(message.encode()).hexdigest() == FIRST_MESSAGE_SHA256
    assert notification_id(OFFLINE_NOTIFICATION) == "sec1000_device_unreachable"


def test_controller_barn_gets_sec1000_barn_for_every_id_and_says_its_name() -> None:
    sensors = {sensor.entity_id: sensor for sensor in sensors_of("barn")}
    assert set(sensors) == {
        entity_id.replace("sec1000_", "sec1000_barn_", 1) for entity_id in CONTRACT_SENSORS
    }
    limit = sensors["sensor.sec1000_barn_export_limit"]
    assert limit.name == "SEC1000 barn Export Limit"
    assert limit.attributes()["friendly_name"] == "SEC1000 barn Export Limit"
    assert "sensor.sec1000_barn_export_guard" in sensors
    assert "sensor.sec1000_barn_export_policy" in sensors
    assert "sensor.sec1000_barn_grid_export_energy" in sensors
    assert "binary_sensor.sec1000_barn_export_over_limit" in sensors
    assert "sensor.sec1000_barn_set_datetime_feedback" in sensors
    helpers = {helper.entity_id: helper for helper in helpers_for("sensor.price", "barn")}
    assert set(helpers) == {
        *(entity_id.replace("sec1000_", "sec1000_barn_", 1) for entity_id in CONTRACT_HELPERS),
        "input_boolean.sec1000_barn_price_policy",
    }
    button = helpers["input_button.sec1000_barn_export_enable"]
    # Home Assistant makes the helper's id from its name: the name must give the id
    assert button.name == "SEC1000 barn Export Enable"
    assert button.name.lower().replace(" ", "_") == button.object_id
    for helper in helpers.values():
        assert helper.name.lower().replace(" ", "_") == helper.object_id, helper
    assert notification_id(OFFLINE_NOTIFICATION, "barn") == "sec1000_barn_device_unreachable"
    assert (
        titled("SEC1000: controller unreachable", "barn") == "SEC1000 barn: controller unreachable"
    )


def test_the_mqtt_device_of_barn_has_its_own_ids_topics_and_device() -> None:
    payload = INFO.payload(OPTIONS, "barn")
    assert payload["dev"]["identifiers"] == ["sec1000_barn"]
    assert payload["dev"]["name"] == "SEC1000 barn"
    cmps = payload["cmps"]
    assert all(unique_id.startswith("sec1000_barn_") for unique_id in cmps)
    assert cmps["sec1000_barn_sensor_export_limit"]["default_entity_id"] == (
        "sensor.sec1000_barn_export_limit"
    )
    assert cmps["sec1000_barn_button_export_disable"]["command_topic"] == (
        "sec1000_barn/sec1000_barn_export_disable/set"
    )
    assert cmps["sec1000_barn_binary_sensor_connected"]["object_id"] == "sec1000_barn_connected"
    ids = entity_ids(OPTIONS, "barn")
    assert "button.sec1000_barn_export_disable" in ids
    assert "number.sec1000_barn_export_limit_setpoint" in ids
    assert "switch.sec1000_barn_export" in ids
    assert "select.sec1000_barn_control_mode" in ids
    assert "switch.sec1000_barn_price_policy" in ids
    assert discovery_topic("barn") == "homeassistant/device/sec1000_barn/config"
    # no topic, id or unique id is shared with the first controller's device
    first, barn = components(OPTIONS), components(OPTIONS, "barn")
    assert not {c.unique_id for c in first} & {c.unique_id for c in barn}
    assert not {c.entity_id for c in first} & {c.entity_id for c in barn}
    assert not set(retained_topics(OPTIONS)) & set(retained_topics(OPTIONS, "barn"))
    assert not set(by_command_topic(OPTIONS)) & set(by_command_topic(OPTIONS, "barn"))
    assert all(not topic.startswith("sec1000/") for topic in retained_topics(OPTIONS, "barn"))


def test_barn_keeps_its_unique_ids_when_its_host_changes() -> None:
    moved = Options.from_mapping({"host": "10.0.0.9", "port": 4321}, base=OPTIONS)
    assert INFO.message(moved, "barn") == INFO.message(OPTIONS, "barn")
    assert list(INFO.payload(moved, "barn")["cmps"]) == list(INFO.payload(OPTIONS, "barn")["cmps"])
