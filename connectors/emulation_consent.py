"""The vendor emulators' authorize endpoint, consent page and token revocation (RFC 6749 §4.1,
RFC 7636 PKCE, RFC 7009), written once for QuickBooks, Xero and Salesforce.

``GET <authorize>?client_id&response_type=code&redirect_uri&scope&state[&code_challenge&
code_challenge_method]`` shows a consent page: an HTML form whose "Allow" button posts the same
parameters back (so a browser, or a test playing one, clicks it) and a "Deny" button. The POST
redirects (302) to ``redirect_uri`` with ``code`` and ``state`` — plus the vendor's own
parameters (Intuit's ``realmId``) — or with ``error=access_denied``. The code is redeemed at the
vendor's token endpoint (``GrantServer`` ``grant_type=authorization_code``).

As the vendors do, an unknown ``client_id`` or a missing/odd ``redirect_uri`` is answered with an
error page and never redirected (§4.1.2.1: the redirect target is not trusted yet); other
problems (``response_type``, a PKCE method other than S256/plain, a missing required scope) are
redirected as ``error=...`` with the state.

Test control ``POST /__emulator/consent {"decision": "ask" | "allow" | "deny"}``: "ask" (the
default) shows the page; "allow"/"deny" answer the GET at once as if the person had clicked.
``POST <revoke>`` takes ``token`` (form, or Intuit's JSON body) with the client's credentials and
answers 200 whether or not the token was known (RFC 7009 §2.2).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from connectors.emulation import CONTROL
from connectors.emulation_grants import GrantServer, TokenRequest, token_response

PARAMS = ("client_id", "response_type", "redirect_uri", "scope", "state", "code_challenge",
          "code_challenge_method")


@dataclass
class Consent:
    """One vendor's authorize/revoke endpoints over its grant server of the moment."""

    vendor: str  # shown on the page
    authorize_path: str
    revoke_path: str
    grants: Callable[[], GrantServer]  # the current server (a reset replaces it)
    subject: Callable[[], tuple[str, ...]] = tuple  # what a grant covers (Xero: every tenant)
    callback_extra: Callable[[], Mapping[str, str]] = dict  # Intuit: {"realmId": ...}
    required_scope: str | None = None  # Intuit refuses an authorize request without it
    lock: Callable[[], AbstractContextManager[Any]] = nullcontext
    decision: str = "ask"
    counts: dict[str, int] = field(default_factory=lambda: {"consents": 0, "denials": 0})

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(self.authorize_path, self._authorize)
        router.add_post(self.authorize_path, self._decide)
        router.add_post(self.revoke_path, self._revoke)
        router.add_post(CONTROL + "consent", self._control)

    # -- authorize ---------------------------------------------------------------------------

    def _problem(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """(where, what): "page" for an untrusted client/redirect, "redirect" for the rest."""
        with self.lock():
            known = params.get("client_id", "") in self.grants().clients
        target = urlsplit(params.get("redirect_uri", ""))
        if not known:
            return "page", "unknown client_id"
        if target.scheme not in ("http", "https") or not target.netloc or target.fragment:
            return "page", "redirect_uri must be an absolute http(s) URL without a fragment"
        if params.get("response_type") != "code":
            return "redirect", "unsupported_response_type"
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in ("S256", "plain"):
            return "redirect", "invalid_request"
        if self.required_scope and self.required_scope not in params.get("scope", "").split():
            return "redirect", "invalid_scope"
        return None

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        params = {k: request.query[k] for k in PARAMS if k in request.query}
        problem = self._problem(params)
        if problem is not None:
            return self._refuse(params, *problem)
        if self.decision != "ask":
            return self._answer(params, allow=self.decision == "allow")
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
        page = (f"<!doctype html><html><head><title>{self.vendor}: allow access?</title></head><body>"
                f"<h1>Connect to {self.vendor}</h1><p>The app <b>{html.escape(params['client_id'])}</b> asks "
                f"for access: {html.escape(params.get('scope', ''))}.</p>"
                f'<form method="post" action="{self.authorize_path}">{hidden}'
                '<button type="submit" name="decision" value="allow" id="allow">Allow</button> '
                '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
                "</form></body></html>")
        return web.Response(text=page, content_type="text/html")

    async def _decide(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        params = {k: str(form[k]) for k in PARAMS if k in form}
        problem = self._problem(params)
        if problem is not None:
            return self._refuse(params, *problem)
        return self._answer(params, allow=form.get("decision") == "allow")

    def _answer(self, params: Mapping[str, str], *, allow: bool) -> web.StreamResponse:
        if not allow:
            self.counts["denials"] += 1
            return self._redirect(params, {"error": "access_denied",
                                           "error_description": "the user denied access"})
        with self.lock():
            code = self.grants().issue_code(
                params["client_id"], params["redirect_uri"], subject=self.subject(),
                code_challenge=params.get("code_challenge") or None,
                code_challenge_method=params.get("code_challenge_method", "plain"))
        self.counts["consents"] += 1
        return self._redirect(params, {"code": code, **self.callback_extra()})

    def _refuse(self, params: Mapping[str, str], where: str, what: str) -> web.StreamResponse:
        if where == "page":
            return web.Response(status=400, content_type="text/html",
                                text=f"<!doctype html><p>{self.vendor}: {html.escape(what)}</p>")
        return self._redirect(params, {"error": what})

    @staticmethod
    def _redirect(params: Mapping[str, str], answer: Mapping[str, str]) -> web.StreamResponse:
        query = dict(answer)
        if "state" in params:
            query["state"] = params["state"]
        uri = params["redirect_uri"]
        sep = "&" if urlsplit(uri).query else "?"
        raise web.HTTPFound(uri + sep + urlencode(query))

    # -- revoke and control ------------------------------------------------------------------

    async def _revoke(self, request: web.Request) -> web.Response:
        form: dict[str, str]
        if request.content_type == "application/json":
            form = {k: str(v) for k, v in (await request.json()).items()}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        token_request = TokenRequest(form, request.headers.get("Authorization", ""), request.host)
        with self.lock():
            client = self.grants().authenticate(token_request)
            if isinstance(client, tuple):
                return token_response(*client)
            self.grants().revoke(form.get("token", ""), client)
        return web.Response(status=200)

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if body.get("decision") in ("ask", "allow", "deny"):
            self.decision = str(body["decision"])
        return web.json_response({"decision": self.decision, **self.counts})


__all__ = ["Consent"]
