"""The user of the acceptance suite: a browser without JavaScript at the AS's real pages
(login, patient picker, encounter picker, consent), making the choices a test asks for —
which scopes to untick or tick on the consent page, approve or deny — and stopping at the
redirect to the app, as Inferno waits for it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from smartrealm.devtools.useragent import Form, parse_page

PASSWORDS = {"patient": "patient-demo", "clinician": "clinician-demo"}
Field = tuple[str, str]


@dataclass(frozen=True)
class Choices:
    username: str = "patient"
    patient: str | None = None  # the patient picker's choice (default: the first offered)
    untick: Collection[Field] = ()  # consent checkboxes to clear, e.g. ("scope:ehr", scope)
    tick: Collection[Field] = ()  # unticked alternatives to tick (granular categories)
    decision: str = "approve"


@dataclass
class Visit:
    """Where the authorization ended: the app's callback, and the pages seen on the way."""

    callback: str
    pages: list[tuple[str, str]] = field(default_factory=list)  # (kind, html)

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.callback).query).items()}

    def page(self, kind: str) -> str:
        return next(html for k, html in self.pages if k == kind)


class UnexpectedPageError(AssertionError):
    """The AS answered something a user could not go on from."""


def drive(browser: httpx.Client, first: httpx.Response, redirect_uri: str,
          choices: Choices, max_steps: int = 12) -> Visit:
    """Follow the pages from ``first`` (the answer to GET or POST /authorize) to the redirect
    back to ``redirect_uri``."""
    visit = Visit("")
    response = first
    for _ in range(max_steps):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_uri):
                visit.callback = location
                return visit
            response = browser.get(location)
            continue
        if response.status_code != 200:
            raise UnexpectedPageError(f"{response.status_code}: {response.text[:400]}")
        response = _submit(browser, response, choices, visit)
    raise UnexpectedPageError(f"no redirect to the app after {max_steps} pages")


def _submit(browser: httpx.Client, response: httpx.Response, choices: Choices,
            visit: Visit) -> httpx.Response:
    forms, text = parse_page(response.text)
    form = next((f for f in forms if f.method == "post"), None)
    if form is None:
        raise UnexpectedPageError(f"page without a form: {text[:300]}")
    kind, data = _fill(form, choices)
    visit.pages.append((kind, response.text))
    return browser.post(urljoin(str(response.url), form.action or str(response.url)),
                        data=_multi(data))


def _fill(form: Form, choices: Choices) -> tuple[str, list[Field]]:
    names = form.names()
    data = list(form.fields)
    if "password" in names:
        data = [(n, v) for n, v in data if n not in ("username", "password")]
        return "login", [*data, ("username", choices.username),
                         ("password", PASSWORDS[choices.username]), *form.submits[:1]]
    if "decision" in names:
        boxes = [(n, v) for n, v, on in form.checkboxes
                 if (on and (n, v) not in choices.untick) or (n, v) in choices.tick]
        return "consent", [*data, *boxes, ("decision", choices.decision)]
    if "patient" in names:
        offered = [o for o in form.choices["patient"] if o]
        chosen = choices.patient or offered[0]
        if chosen not in offered:
            raise UnexpectedPageError(f"patient {chosen} not offered: {offered[:10]}")
        return "patient picker", [*data, ("patient", chosen), *form.submits[:1]]
    if "encounter" in names:  # the most recent encounter, listed first
        encounters = form.choices["encounter"]
        return "encounter picker", [*data, ("encounter", encounters[0] if encounters else ""),
                                    *form.submits[:1]]
    raise UnexpectedPageError(f"unexpected page with fields {sorted(names)}")


def _multi(pairs: list[Field]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data
