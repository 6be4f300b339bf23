"""The OTA client's credentials: /factory/ota/hawkbit.conf and, optionally, the target in hawkBit.

hawkbit.conf follows rauc-hawkbit-updater's config.conf (the agreed contract with the OTA client):
[client] with the server, TLS settings, tenant, target_name = DID and auth_token = the target's
security token; [device] attributes are sent to hawkBit as target attributes.
Registration uses hawkBit's Management API: POST {management_url}/rest/v1/targets with a JSON list
of {controllerId, name, description, securityToken}, HTTP Basic authentication; 201 = created.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.request

from pycam.errors import PycamError
from pycam.factory.config import OtaSettings


def new_token() -> str:
    return secrets.token_hex(16)


def config_text(ota: OtaSettings, did: str, token: str, mac: str, model: str, hw_revision: str) -> str:
    def b(v: bool) -> str:
        return "true" if v else "false"

    return (
        "# written by the factory line (pycam factory): the OTA client's identity for this device\n"
        "[client]\n"
        f"hawkbit_server            = {ota.hawkbit_server}\n"
        f"ssl                       = {b(ota.ssl)}\n"
        f"ssl_verify                = {b(ota.ssl_verify)}\n"
        f"tenant_id                 = {ota.tenant_id}\n"
        f"target_name               = {did}\n"
        f"auth_token                = {token}\n"
        f"bundle_download_location  = {ota.bundle_download_location}\n"
        "retry_wait                = 60\n"
        "connect_timeout           = 20\n"
        "timeout                   = 60\n"
        "post_update_reboot        = false\n"
        "log_level                 = message\n"
        "\n"
        "[device]\n"
        f"mac_address               = {mac}\n"
        f"hw_revision               = {hw_revision}\n"
        f"model                     = {model}\n"
    )


def register(ota: OtaSettings, did: str, token: str, description: str, timeout: float = 20) -> dict[str, object]:
    """Create the target in hawkBit; returns hawkBit's answer for it. A target that exists is an error."""
    user, password = os.environ.get(ota.management_user_env, ""), os.environ.get(ota.management_password_env, "")
    if not ota.management_url or not user:
        raise PycamError("hawkBit registration is on but its Management API is not configured",
                         f"set ota.management_url in the line configuration and ${ota.management_user_env}/"
                         f"${ota.management_password_env} in the station's environment")
    body = json.dumps([{"controllerId": did, "name": did, "description": description,
                        "securityToken": token}]).encode()
    req = urllib.request.Request(ota.management_url.rstrip("/") + "/rest/v1/targets", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/hal+json")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:300]
        if e.code == 409:
            raise PycamError(f"hawkBit already has a target {did}: {detail}",
                             "a DID is never reused; check the station database") from e
        raise PycamError(f"hawkBit refused target {did}: HTTP {e.code} {detail}",
                         "check the Management API credentials and URL") from e
    except (urllib.error.URLError, OSError) as e:
        raise PycamError(f"hawkBit Management API unreachable at {ota.management_url}: {e}",
                         "check ota.management_url and the network") from e
    if not isinstance(answer, list) or not answer or answer[0].get("controllerId") != did:
        raise PycamError(f"hawkBit answered unexpectedly to creating {did}: {str(answer)[:200]}")
    return dict(answer[0])
