"""A scripted user at the AS's pages: it fills the real login, patient-picker and consent
forms over HTTP exactly as a browser without JavaScript would (cookies, hidden CSRF fields,
the form's own action). Used by `smartrealm demo` and the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


class UserAgentError(RuntimeError):
    """The pages did not lead where a user would expect (names the page and what was seen)."""


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)  # radio/select options
    checkboxes: list[tuple[str, str, bool]] = field(default_factory=list)
    submits: list[tuple[str, str]] = field(default_factory=list)

    def names(self) -> set[str]:
        names = {n for n, _ in self.fields} | set(self.choices) | {n for n, _ in self.submits}
        return names | {n for n, _, _ in self.checkboxes}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif self.forms and tag in ("input", "button"):
            self._input(self.forms[-1], tag, a)
        elif self.forms and tag == "select":
            self._select = a.get("name", "")
            self.forms[-1].choices.setdefault(self._select, [])
        elif self.forms and tag == "option" and self._select is not None:
            self.forms[-1].choices[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    @staticmethod
    def _input(form: Form, tag: str, a: dict[str, str]) -> None:
        kind, name, value = a.get("type", "text" if tag == "input" else "submit"), a.get(
            "name", ""), a.get("value", "")
        if not name:
            return
        if kind == "submit":
            form.submits.append((name, value))
        elif kind == "radio":
            form.choices.setdefault(name, []).append(value)
        elif kind == "checkbox":
            form.checkboxes.append((name, value, "checked" in a))
        else:
            form.fields.append((name, value))


def parse_page(html: str) -> tuple[list[Form], str]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms, " ".join(parser.text)


@dataclass
class PageLog:
    """What the user saw, for the demo's narration: page kind and its visible text."""

    pages: list[tuple[str, str]] = field(default_factory=list)


async def authorize_as_user(http: httpx.AsyncClient, authorize_url: str, redirect_uri: str, *,
                            username: str, password: str, patient: str | None = None,
                            log: PageLog | None = None, max_steps: int = 10) -> str:
    """Follow the authorization request through the AS's pages and approve; return the
    callback URL the AS redirected to (the app parses it)."""
    response = await http.get(authorize_url)
    for _ in range(max_steps):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_uri):
                return location
            response = await http.get(location)
            continue
        if response.status_code != 200:
            _forms, text = parse_page(response.text)
            raise UserAgentError(f"the AS answered {response.status_code}: {text[:300]}")
        response = await _submit_page(http, response, username, password, patient, log)
    raise UserAgentError(f"no redirect to the app after {max_steps} pages")


async def _submit_page(http: httpx.AsyncClient, response: httpx.Response, username: str,
                       password: str, patient: str | None, log: PageLog | None
                       ) -> httpx.Response:
    forms, text = parse_page(response.text)
    form = next((f for f in forms if f.method == "post"), None)
    if form is None:
        raise UserAgentError(f"page without a form: {text[:300]}")
    names = form.names()
    data = list(form.fields)
    if "password" in names:
        kind = "login"
        data = [(n, v) for n, v in data if n not in ("username", "password")]
        data += [("username", username), ("password", password)]
    elif "patient" in names and "decision" not in names:
        kind = "patient picker"
        data.append(("patient", _pick(form, patient)))
    elif "encounter" in names and "decision" not in names:
        kind = "encounter picker"  # the most recent encounter (listed first)
        data.append(("encounter", next(iter(form.choices["encounter"]), "")))
    elif "decision" in names:
        kind = "consent"
        if "patient" in form.choices:
            data.append(("patient", _pick(form, patient)))
        data += [(n, v) for n, v, checked in form.checkboxes if checked]
        data.append(("decision", "approve"))
    else:
        raise UserAgentError(f"unexpected page (fields {sorted(names)}): {text[:300]}")
    if log is not None:
        log.pages.append((kind, text))
    if kind != "consent" and form.submits:
        data.append(form.submits[0])
    return await http.post(urljoin(str(response.url), form.action or str(response.url)),
                           data=dict(_merge(data)))


def _pick(form: Form, wanted: str | None) -> str:
    options = [o for o in form.choices.get("patient", []) if o]
    if wanted is not None:
        if wanted not in options:
            raise UserAgentError(f"patient {wanted!r} not offered (offered: {options[:10]})")
        return wanted
    if not options:
        raise UserAgentError("the patient picker offers no patient")
    return options[0]


def _merge(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    merged: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name in merged:
            current = merged[name]
            merged[name] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            merged[name] = value
    return merged
