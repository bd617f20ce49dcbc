"""Connecting to the real server: AUTH, its errors, TLS and mutual TLS."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

import tickwire
from tickwire import ErrorCode, ErrorKind

from conftest import run_async
from server import PASSWORD, USER


def test_a_client_name_the_server_would_refuse_is_refused_locally():
    with pytest.raises(ValueError, match="128 bytes"):
        tickwire.AsyncClient("127.0.0.1", 1, USER, PASSWORD, client_name="\u00e9" * 65)
    tickwire.AsyncClient("127.0.0.1", 1, USER, PASSWORD, client_name="\u00e9" * 64)


@run_async
async def test_auth_ok_reports_the_server_parameters(server):
    async with await tickwire.connect("127.0.0.1", server.port, USER, PASSWORD,
                                      client_name="pytest") as client:
        info = client.auth_info
        assert info.session_id
        assert info.protocol_version == 1
        assert info.heartbeat_interval_ms == 15000
        assert info.heartbeat_timeout_ms == 20000
        assert info.max_msg_size == 65536
        assert info.batch_window_ms == 5
        assert client.state is tickwire.ConnectionState.OPEN
    assert client.closed and client.close_reason is None


@run_async
async def test_wrong_password_fails_at_once(server):
    start = time.monotonic()
    with pytest.raises(tickwire.ServerError) as caught:
        await tickwire.connect("127.0.0.1", server.port, USER, "wrong")
    assert caught.value.code is ErrorCode.AUTH_FAILED
    assert caught.value.fatal
    assert "wrong" not in str(caught.value)
    assert time.monotonic() - start < 3  # no retry loop on the first connect


@run_async
async def test_auth_rate_limited_says_when_to_retry(make_server):
    s = make_server(AUTH_FAIL_BUDGET_ADDR=1, AUTH_BACKOFF_MIN="5s")
    with pytest.raises(tickwire.ServerError) as first:
        await tickwire.connect("127.0.0.1", s.port, USER, "wrong")
    assert first.value.code is ErrorCode.AUTH_FAILED
    with pytest.raises(tickwire.ServerError) as second:
        await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
    assert second.value.code is ErrorCode.AUTH_RATE_LIMITED
    assert 0 < second.value.retry_after_ms <= 5000


@run_async
async def test_nothing_listening_is_a_connect_error(make_server):
    s = make_server()
    port = s.port
    s.stop()
    with pytest.raises(tickwire.TickwireError) as caught:
        await tickwire.connect("127.0.0.1", port, USER, PASSWORD)
    assert caught.value.kind is ErrorKind.CONNECT


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256, two days),
    made with the openssl command line; and a second CA nobody trusts."""
    d = tmp_path_factory.mktemp("pki")

    def run(cmd: str) -> None:
        subprocess.run(cmd, shell=True, cwd=d, check=True, capture_output=True)

    for ca in ("ca", "rogue"):
        run(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
            f"-keyout {ca}.key -out {ca}.crt -subj /CN=tickwire-py-test-{ca} "
            "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign")
    leaves = {"server": ("ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
              "client": ("ca", "extendedKeyUsage=clientAuth")}
    for name, (ca, ext) in leaves.items():
        (d / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\n{ext}\n")
        run(f"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            f"-keyout {name}.key -out {name}.csr -subj /CN={name} && "
            f"openssl x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial "
            f"-days 2 -extfile {name}.ext -out {name}.crt")
    return d


@run_async
async def test_tls_with_a_client_certificate(make_server, pki, topic):
    s = make_server(TLS_CERT_PATH=pki / "server.crt", TLS_KEY_PATH=pki / "server.key",
                    TLS_CLIENT_CA_PATH=pki / "ca.crt")
    tls = dict(ca_file=str(pki / "ca.crt"), cert_file=str(pki / "client.crt"),
               key_file=str(pki / "client.key"))
    async with await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, **tls) as client:
        await client.subscribe("tick", [topic])
        assert await client.publish([(topic, 1.25, 2)], ack=True) == 1
        ev = await client.next_event(5)
        assert [(t.topic, t.price, t.seq) for t in ev.records] == [(topic, 1.25, 1)]

    # The server requires a client certificate: without one the handshake or AUTH fails.
    with pytest.raises(tickwire.TickwireError) as no_cert:
        await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD,
                               ca_file=str(pki / "ca.crt"), connect_timeout=3)
    assert no_cert.value.kind in (ErrorKind.IO, ErrorKind.CONNECT)

    # A server certificate from a CA the client does not trust is refused.
    with pytest.raises(tickwire.TickwireError) as untrusted:
        await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD,
                               ca_file=str(pki / "rogue.crt"))
    assert untrusted.value.kind is ErrorKind.CONNECT
    assert "certificate verify failed" in str(untrusted.value)


@run_async
async def test_plain_client_against_a_tls_port_does_not_hang(make_server, pki):
    s = make_server(TLS_CERT_PATH=pki / "server.crt", TLS_KEY_PATH=pki / "server.key",
                    TLS_HANDSHAKE_TIMEOUT="1s")
    with pytest.raises(tickwire.TickwireError) as caught:
        await asyncio.wait_for(
            tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, connect_timeout=2), 10)
    assert caught.value.kind in (ErrorKind.IO, ErrorKind.TIMEOUT, ErrorKind.PROTOCOL)
