"""The API as the CLI speaks it: a base URL and a token, JSON in and out, errors as ApiError with the server's
{code, message}. Where the login is kept: $PROCTOR_CONFIG, else ~/.config/proctor/config.json, written 0600."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

API_PREFIX = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, path: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.path = status, code, message, path

    @property
    def no_such_endpoint(self) -> bool:
        """The server has no operation at this path (not: the thing asked for does not exist)."""
        return self.status == 404 and "no API operation" in self.message


class NotLoggedIn(Exception):
    pass


def config_path() -> Path:
    return Path(os.environ.get("PROCTOR_CONFIG") or Path.home() / ".config" / "proctor" / "config.json")


def config_save(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": url, "token": token}, file)
    os.chmod(path, 0o600)  # also when the file was there before with wider permissions
    return path


def config_load() -> dict:
    url, token = os.environ.get("PROCTOR_URL"), os.environ.get("PROCTOR_TOKEN")
    if not (url and token):
        try:
            saved = json.loads(config_path().read_text())
        except (OSError, ValueError):
            saved = {}
        url, token = url or saved.get("url"), token or saved.get("token")
    if not (url and token):
        raise NotLoggedIn("Not logged in: run `proctor login --url URL` (or set PROCTOR_URL and PROCTOR_TOKEN).")
    return {"url": url, "token": token}


@dataclass
class Client:
    url: str
    token: str
    timeout: float = 30

    @classmethod
    def from_config(cls) -> Client:
        config = config_load()
        return cls(config["url"], config["token"])

    def request(self, method: str, path: str, *, body=None, query: dict | None = None, headers: dict | None = None,
                raw: bool = False):
        query = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        url = self.url.rstrip("/") + API_PREFIX + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json", "User-Agent": "proctor-cli/1",
            **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                problem = json.loads(payload)
            except ValueError:
                problem = {}
            raise ApiError(error.code, problem.get("code", "error"), problem.get("message") or error.reason or "",
                           path=path) from None
        if raw:
            return payload
        return json.loads(payload) if payload else None

    def get(self, path, **query):
        return self.request("GET", path, query=query)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body=body if body is not None else {}, **kwargs)
