"""The OpenAPI document is precise enough to generate a working client: openapi-python-client
generates one from the document a running development server serves, pip installs it into a
temporary directory, and a login runs through it against that server. The tests below pin what
the generator once lost: a typed verify body, datetimes in optional fields, every problem code."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.clients.fakes import verification_json
from tests.clients.support import (
    GENERATOR_REQUIREMENT,
    LiveService,
    importable,
    require_python_package,
)

PACKAGE = "otpservice_generated_client"
CONFIG = f"project_name_override: otpservice-generated-client\npackage_name_override: {PACKAGE}\n"
"""Not `otpservice_client` (the name the generator takes from the title): that is ours."""


def run(command: list[str], what: str, **options: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, **options
    )
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def generated(
    live_service: LiveService, python_packages: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """The generated client, installed under a temporary directory and imported from there."""
    generator_site = require_python_package(
        "openapi_python_client", GENERATOR_REQUIREMENT, python_packages / "generator"
    )
    work = tmp_path_factory.mktemp("generated-client")
    document = httpx.get(f"{live_service.url}/schema/openapi.json", timeout=10)
    document.raise_for_status()
    (work / "openapi.json").write_bytes(document.content)
    (work / "config.yaml").write_text(CONFIG, encoding="utf-8")
    env = dict(os.environ)
    # The generator formats its output with `ruff` from PATH: the one installed beside it.
    bins = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    if generator_site is not None:
        bins.insert(0, str(generator_site / "bin"))
        env["PYTHONPATH"] = os.pathsep.join([str(generator_site), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join(bins)
    env = {name: value.strip(os.pathsep) for name, value in env.items()}
    generator = [sys.executable, "-m", "openapi_python_client", "generate"]
    run(
        [
            *generator,
            *("--path", str(work / "openapi.json"), "--config", str(work / "config.yaml")),
            *("--meta", "setup", "--output-path", str(work / "project")),
            # Any warning (a schema it skipped or could not read) fails the test, with its text.
            "--fail-on-warning",
        ],
        "openapi-python-client generate",
        env=env,
        cwd=work,
    )
    site = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    run(
        [*pip, "--target", str(site), str(work / "project")],
        "pip install of the generated client",
    )
    sys.path.insert(0, str(site))
    try:
        # What the generated code imports besides httpx; the service's test extra brings it.
        with importable("attrs", "attrs>=22.2", python_packages / "attrs"):
            yield SimpleNamespace(
                client=importlib.import_module(f"{PACKAGE}.client"),
                models=importlib.import_module(f"{PACKAGE}.models"),
                start=importlib.import_module(f"{PACKAGE}.api.verifications.start_verification"),
                check=importlib.import_module(f"{PACKAGE}.api.verifications.check_code"),
                get=importlib.import_module(f"{PACKAGE}.api.verifications.get_verification"),
            )
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def verify_body(models: Any, **fields: str) -> Any:
    """The document's VerifyRequest is VerifyById | VerifyByNumber: the generated models."""
    return models.VerifyById(**fields) if "id" in fields else models.VerifyByNumber(**fields)


def test_a_login_through_the_generated_client(generated, live_service: LiveService, phone) -> None:
    models = generated.models
    client = generated.client.AuthenticatedClient(
        base_url=live_service.url, token=live_service.api_key, raise_on_unexpected_status=True
    )
    with client:
        started = generated.start.sync_detailed(
            client=client, body=models.StartRequest(to=phone, locale="en"), idempotency_key=phone
        )
        assert started.status_code == 201
        verification = started.parsed
        assert isinstance(verification, models.Verification)
        assert verification.status == models.VerificationStatus.PENDING
        assert isinstance(verification.created_at, datetime)

        replayed = generated.start.sync_detailed(
            client=client, body=models.StartRequest(to=phone, locale="en"), idempotency_key=phone
        )
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.parsed.id == verification.id

        code = live_service.code(phone)
        checked = generated.check.sync(
            client=client, body=verify_body(models, id=verification.id, code=code)
        )
        assert isinstance(checked, models.CheckResult)
        assert checked.valid is True
        assert checked.status == models.CheckResultStatus.APPROVED

        read = generated.get.sync(client=client, verification_id=verification.id)
        assert isinstance(read, models.Verification)
        assert read.status == models.VerificationStatus.APPROVED
        assert read.delivery.events[0].status == models.DeliveryEventOutStatus.QUEUED


def test_the_generated_client_reads_each_problem_answer(
    generated, live_service: LiveService, phone
) -> None:
    models = generated.models
    stranger = generated.client.AuthenticatedClient(base_url=live_service.url, token="wrong")
    with stranger:
        refused = generated.start.sync_detailed(client=stranger, body=models.StartRequest(to=phone))
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.StartVerificationResponse401)
    assert refused.parsed.code == models.StartVerificationResponse401Code.UNAUTHORIZED

    client = generated.client.AuthenticatedClient(
        base_url=live_service.url, token=live_service.api_key
    )
    with client:
        generated.start.sync(client=client, body=models.StartRequest(to=phone))
        too_soon = generated.start.sync_detailed(client=client, body=models.StartRequest(to=phone))
        bad_number = generated.start.sync(client=client, body=models.StartRequest(to="+4860"))
        missing = generated.get.sync(client=client, verification_id="no-such-verification")
    assert too_soon.status_code == 429
    assert too_soon.parsed.code == models.StartVerificationResponse429Code.RESEND_TOO_SOON
    assert int(too_soon.headers["retry-after"]) >= 1
    assert bad_number.code == models.StartVerificationResponse400Code.INVALID_PHONE_NUMBER
    assert missing.code == models.GetVerificationResponse404Code.VERIFICATION_NOT_FOUND


def test_the_generated_client_has_a_typed_verify_body(generated) -> None:
    assert hasattr(generated.models, "VerifyById")
    assert hasattr(generated.models, "VerifyByNumber")


def test_the_generated_client_reads_resend_available_at_as_a_datetime(generated) -> None:
    verification = generated.models.Verification.from_dict(verification_json())
    assert isinstance(verification.resend_available_at, datetime)


def test_the_generated_client_reads_a_fraud_suspected_answer(generated) -> None:
    answer = generated.models.StartVerificationResponse429.from_dict(
        {
            "type": "urn:otpservice:problem:fraud_suspected",
            "title": "Suspected SMS pumping",
            "status": 429,
            "detail": "rule x",
            "code": "fraud_suspected",
        }
    )
    assert answer.code == "fraud_suspected"


def test_the_generated_client_reads_an_overloaded_answer_to_a_read(generated) -> None:
    answer = generated.models.GetVerificationResponse503.from_dict(
        {
            "type": "urn:otpservice:problem:overloaded",
            "title": "The service is overloaded",
            "status": 503,
            "detail": "Too many requests are being processed; retry shortly.",
            "code": "overloaded",
        }
    )
    assert answer.code == "overloaded"
