"""The Connection step's test: telemetry read once from the address in the form, through the
one link, before anything is saved."""

from __future__ import annotations

from aiohttp import web

from sec1000.options import Options, OptionsError
from sec1000.web.forms import read_form
from sec1000.web.i18n import N_, request_translator
from sec1000.web.keys import TEMPLATES, chosen
from sec1000.web.phrases import say
from sec1000.web.setup import submitted
from sec1000.web.setup_steps import STEPS_BY_ID
from sec1000.web.status import failure_detail
from sec1000.web.views import html
from sec1000.web.words import OPTION_LABELS


async def test_connection(request: web.Request) -> web.Response:
    """POST test-connection: read telemetry once from the form's address, through the one link."""
    form = await read_form(request)
    values = submitted(STEPS_BY_ID["connection"], form)
    address = {key: values[key] for key in ("host", "port") if key in values}
    runtime = chosen(request)
    tr = request_translator(request)
    try:
        candidate = Options.from_mapping(address, base=runtime.options)
    except OptionsError as err:
        text = "; ".join(
            f"{tr.gettext(OPTION_LABELS.get(key, key))} {say(words, tr)}"
            for key, words in err.errors.items()
        )
        return html(
            _test_result(
                request,
                False,
                tr.gettext(N_("Check the address: {problem}.")).format(problem=text),
                "",
            )
        )
    result = await runtime.ops.test_connection(candidate.host, candidate.port)
    target = f"{candidate.host}:{candidate.port}"
    if result.ok:
        words = tr.gettext(N_("The controller at {target} answered.")).format(target=target)
        return html(_test_result(request, True, words, say(result.message, tr)))
    words = tr.gettext(N_("No controller answered at {target}.")).format(target=target)
    detail = failure_detail(result.feedback, result.message, tr)
    return html(_test_result(request, False, words, detail))


def _test_result(request: web.Request, ok: bool, message: str, detail: str) -> str:
    template = request.app[TEMPLATES].get_template("_test_result.html")
    return template.render(ok=ok, message=message, detail=detail, tr=request_translator(request))
