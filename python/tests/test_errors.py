"""Error mapping against the real server, and the transport's own failures."""

from __future__ import annotations

import os
import socket

import pytest

import berth
from berth import Berth


def test_missing_sandbox_is_not_found(client: Berth) -> None:
    with pytest.raises(berth.NotFoundError) as e:
        client.sandboxes.get("doesnotexist")
    assert e.value.status == 404 and e.value.code == "NOT_FOUND"
    with pytest.raises(berth.NotFoundError):
        client.sandbox("doesnotexist").run("true")
    with pytest.raises(berth.NotFoundError):
        list(client.sandbox("doesnotexist").events.follow(idle_timeout=5))


def test_wrong_key_is_authentication_error() -> None:
    with Berth(api_key="wrong-key") as bad:
        with pytest.raises(berth.AuthenticationError) as e:
            bad.sandboxes.list()
        assert e.value.status == 401 and e.value.code == "UNAUTHORIZED"
        with pytest.raises(berth.AuthenticationError):
            bad.check_auth()
        with pytest.raises(berth.AuthenticationError):
            next(bad.sandbox("any").events.follow())
        assert bad.health()["status"] in ("ok", "degraded")  # /health needs no key


def test_validation_is_invalid_request(client: Berth) -> None:
    with pytest.raises(berth.InvalidRequestError) as e:
        client.sandboxes.create(labels={"berth.reserved": "x"})
    assert e.value.status == 400
    with pytest.raises(berth.InvalidRequestError):
        client.sandboxes.create(limits={"cpus": -1})


def test_policy_refusal_is_permission_denied(client: Berth) -> None:
    with pytest.raises(berth.PermissionDeniedError) as e:
        client.sandboxes.create(network="host")
    assert e.value.code == "NETWORK_NOT_ALLOWED" and e.value.status == 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_url_names_it() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with Berth(url=url, api_key="k") as client:
        with pytest.raises(berth.NetworkError) as e:
            client.sandboxes.list()
    assert url in str(e.value)
    assert e.value.status == 0 and e.value.code == "NETWORK"
    assert isinstance(e.value, ConnectionError)
    with pytest.raises(berth.NetworkError) as e2:
        next(Berth(url=url).sandbox("x").events.follow())
    assert url in str(e2.value)


def test_env_defaults() -> None:
    client = Berth()
    assert client.url == os.environ["BERTH_URL"].rstrip("/")
    client.close()


def test_every_code_has_a_class() -> None:
    codes = {
        "INVALID_JSON": berth.InvalidRequestError,
        "VALIDATION_FAILED": berth.InvalidRequestError,
        "UNKNOWN_ACTION": berth.InvalidRequestError,
        "UNAUTHORIZED": berth.AuthenticationError,
        "NOT_FOUND": berth.NotFoundError,
        "PAYLOAD_TOO_LARGE": berth.PayloadTooLargeError,
        "UNSUPPORTED_MEDIA_TYPE": berth.InvalidRequestError,
        "PATH_NOT_ALLOWED": berth.InvalidRequestError,
        "BAD_ARCHIVE": berth.InvalidRequestError,
        "PERMISSION_DENIED": berth.PermissionDeniedError,
        "NETWORK_NOT_ALLOWED": berth.PermissionDeniedError,
        "RUNTIME_NOT_ALLOWED": berth.PermissionDeniedError,
        "MOUNT_NOT_ALLOWED": berth.PermissionDeniedError,
        "LIMIT_NOT_ALLOWED": berth.PermissionDeniedError,
        "NO_SPACE": berth.NoSpaceError,
        "CONFLICT": berth.ConflictError,
        "UNAVAILABLE": berth.SandboxUnavailableError,
        "TIMEOUT": berth.TimeoutError,
        "INTERRUPTED": berth.SandboxUnavailableError,
        "INTERNAL": berth.ServerError,
    }
    assert set(berth.ERROR_CLASS_BY_CODE) == set(codes)
    for code, cls in codes.items():
        err = berth.error_from_response(418, f'{{"code": "{code}", "message": "m", "details": {{"k": 1}}}}')
        assert type(err) is cls, code
        assert (err.code, err.message, err.details, err.status) == (code, "m", {"k": 1}, 418)
    assert type(berth.error_from_response(502, "<html>bad gateway</html>")) is berth.ServerError
    assert type(berth.error_from_response(404, "")) is berth.NotFoundError
    unknown = berth.error_from_response(400, '{"code": "NEW_CODE", "message": "later"}')
    assert type(unknown) is berth.BerthError and unknown.code == "NEW_CODE"
