"""The Setup page's steps: the options it asks for, in three steps (and Advanced), with help.

Each field's label is the option's one label (`words.OPTION_LABELS`), its kind and bounds the
option table's (`options.SPECS_BY_KEY`): the same checks as the Configuration tab.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sec1000.options import CONTROLLER_KEYS, FIRST_CONTROLLER, SPECS_BY_KEY, OptionSpec
from sec1000.web.i18n import N_
from sec1000.web.words import OPTION_LABELS


@dataclass(frozen=True, slots=True)
class Field:
    """How one option is asked for (its label is the option's one label, in words.py)."""

    key: str
    help: str
    widget: str = "number"  # text | number | radio | checkbox | select | password | controllers
    step: str | None = None
    unit: str = ""

    @property
    def label(self) -> str:
        """The option's label."""
        return OPTION_LABELS[self.key]

    @property
    def spec(self) -> OptionSpec:
        """The option's kind and bounds (the same checks as the Configuration tab)."""
        return SPECS_BY_KEY[self.key]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the setup; its fields are the options declared for it (`OptionSpec.step`),
    an additional controller's only those it may set itself (`only`)."""

    id: str
    number: str
    title: str
    intro: str
    only: frozenset[str] | None = None

    @property
    def fields(self) -> tuple[Field, ...]:
        """How each option of this step is asked for, in order."""
        return tuple(
            field
            for field in FIELDS.values()
            if field.spec.step == self.id and (self.only is None or field.key in self.only)
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """The option keys this step saves."""
        return tuple(f.key for f in self.fields)


KW = "kW"
PRICE_UNIT = N_("per kWh")
# How each option is asked for, in the order the steps show them; which step shows it is the
# option's declaration (`OptionSpec.step`).
FIELDS: dict[str, Field] = {
    field.key: field
    for field in (
        Field(
            "host",
            N_("IP address or host name of the SEC1000 (GoodWe's default is 192.168.1.200)."),
            "text",
        ),
        Field("port", N_("TCP port of the controller, usually 1234.")),
        Field(
            "scan_interval",
            N_("Seconds between two telemetry reads; 30 s is the usual choice."),
            unit="s",
        ),
        Field(
            "min_export_limit",
            N_("Written by “export off”. Export counts as off below it + 0.01 kW."),
            step="0.01",
            unit=KW,
        ),
        Field(
            "max_export_limit",
            N_(
                "Written by “export on”: at least the minimum, at most the capacity. "
                "A higher limit is refused from every origin."
            ),
            step="0.01",
            unit=KW,
        ),
        Field(
            "total_capacity",
            N_("The PV plant's total capacity, sent with every limit write."),
            step="0.01",
            unit=KW,
        ),
        Field(
            "export_ceiling_kw",
            N_(
                "Your grid contract's maximum export (0: none), rounded down to 10 W steps. "
                "Nothing above it, and no mode but value, is ever written; the controller "
                "is read every scan."
            ),
            step="0.01",
            unit=KW,
        ),
        Field(
            "overshoot_margin_kw",
            N_("Export this far above the limit (or 5 percent of it) is still normal regulation."),
            step="0.01",
            unit=KW,
        ),
        Field(
            "overshoot_seconds",
            N_("How long export must stay above the limit and margin to be an overshoot."),
            unit="s",
        ),
        Field(
            "export_limit_control_mode",
            N_(
                "DRED is used in Australia and New Zealand, RCR in Germany; elsewhere choose “By value”."
            ),
            widget="radio",
        ),
        Field(
            "three_phase_sum",
            N_("On: limit the sum of the three phases. Off: measure each phase separately."),
            "checkbox",
        ),
        Field(
            "price_policy",
            N_("On: the add-on switches export by the price. Also a helper in Home Assistant."),
            "checkbox",
        ),
        Field(
            "price_entity",
            N_(
                "A sensor priced per kWh, or Octopus Energy's day-rates event; DOCS lists the "
                "entity to pick for each price integration."
            ),
            "text",
        ),
        Field(
            "export_off_below",
            N_("Export goes off at once below this price."),
            step="0.001",
            unit=PRICE_UNIT,
        ),
        Field(
            "export_on_above",
            N_("Export comes back on at or above this price (at least the off price)."),
            step="0.001",
            unit=PRICE_UNIT,
        ),
        Field(
            "policy_min_dwell_minutes",
            N_("Export stays off at least this long, so a flapping price costs few writes."),
            unit="min",
        ),
        Field(
            "price_stale_minutes",
            N_("Minutes without a new price (outside its forecast) before it counts as stale."),
            unit="min",
        ),
        Field(
            "price_stale_action",
            N_("What the policy does while the price is stale."),
            widget="select",
        ),
        Field(
            "entities",
            N_(
                "Automatic uses MQTT when a broker is found (the Mosquitto add-on, or the "
                "broker below), else REST."
            ),
            widget="select",
        ),
        Field(
            "mqtt_host",
            N_(
                "Only outside the Supervisor: the broker's address. Under the Supervisor the "
                "Mosquitto add-on is found by itself."
            ),
            "text",
        ),
        Field("mqtt_port", N_("The broker's TCP port, usually 1883.")),
        Field("mqtt_username", N_("Empty when the broker needs none."), "text"),
        Field(
            "mqtt_password",
            N_("Stored, never shown or logged. Leave empty to keep the one saved."),
            "password",
        ),
        Field(
            "controllers",
            N_(
                "A name of small letters, digits or '_' (it goes into the entity ids: "
                "sec1000_NAME_…), and the controller's address. Everything else is taken "
                "from the first controller until you change it on the controller's Setup."
            ),
            widget="controllers",
        ),
        Field(
            "request_gap_ms",
            N_("Keep 1000 ms or more: faster traffic can make the controller fall silent."),
            unit="ms",
        ),
        Field("request_timeout", N_("Seconds to wait for one answer."), unit="s"),
        Field(
            "offline_notification_minutes",
            N_("Minutes without an answer before Home Assistant shows a notification."),
            unit="min",
        ),
        Field(
            "verify_interval",
            N_(
                "Seconds between two read-backs of the export settings (0: only at start-up "
                "and after each write). With an export ceiling, at least every scan."
            ),
            unit="s",
        ),
        Field(
            "drift_action",
            N_("What the add-on does when the controller holds another limit than the wanted one."),
            widget="select",
        ),
        Field("log_level", N_("How much the add-on writes to its log."), widget="select"),
    )
}
STEPS = (
    Step(
        "connection",
        "1",
        N_("Connection"),
        N_("Where the controller is on your network, and how often its values are read."),
    ),
    Step(
        "limits",
        "2",
        N_("Limits"),
        N_("What “export off” and “export on” write, and the size of the PV plant."),
    ),
    Step(
        "mode",
        "3",
        N_("Mode"),
        N_("How the controller limits the export. Saving a new mode also switches the controller."),
    ),
    Step(
        "policy",
        "4",
        N_("Price policy"),
        N_(
            "Switch export off while the grid pays badly (negative prices), back on when it is good."
        ),
    ),
    Step(
        "home_assistant",
        "5",
        N_("Home Assistant"),
        N_("How the entities reach Home Assistant: as a device through MQTT, or as plain states."),
    ),
    Step(
        "controllers",
        "6",
        N_("Controllers"),
        N_(
            "More SEC1000 controllers in this add-on, each with its own connection, guard and "
            "entities. Choose one in the header to see it and change its own settings."
        ),
    ),
    Step(
        "advanced",
        "",
        N_("Advanced"),
        N_("The controller is fragile: change these only when you know why."),
    ),
)
STEPS_BY_ID = {step.id: step for step in STEPS}


def steps_for(controller: str) -> tuple[Step, ...]:
    """The steps of a controller's Setup: the first one's every option; an additional one's
    only the keys it may set itself (and the list of controllers)."""
    if controller == FIRST_CONTROLLER:
        return STEPS
    own = frozenset(
        key
        for key, field in FIELDS.items()
        if key in CONTROLLER_KEYS or field.widget == "controllers"
    )
    return tuple(replace(step, only=own) for step in STEPS if replace(step, only=own).fields)
